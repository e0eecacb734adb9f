"""Which open dead letters a replay covers: ``ReplayFilters``, parsed from form fields,
command options or a request's stored JSON, and described in words."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from django.utils.dateparse import parse_date, parse_datetime

from portal.accounts.models import Tenant
from portal.errors import InvalidRequest
from portal.sql_limits import IN_LIST_CHUNK

from .models import (
    DEAD_LETTER_REASONS,
)


def _parse_instant(value: Any, *, name: str, end_of_day: bool = False) -> dt.datetime | None:
    """An aware UTC datetime from a datetime, an ISO 8601 string or a plain date."""
    if value in (None, ""):
        return None
    parsed: dt.datetime
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = _day_start(value, end_of_day=end_of_day)
    else:
        parsed = _parse_instant_text(str(value).strip(), name=name, end_of_day=end_of_day)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:
        raise InvalidRequest(f"{name} is out of range.") from None


def _parse_instant_text(text: str, *, name: str, end_of_day: bool) -> dt.datetime:
    """An ISO 8601 datetime or plain date, as written; InvalidRequest for anything else."""
    try:
        parsed = parse_datetime(text.replace("Z", "+00:00"))
        if parsed is None:
            day = parse_date(text)
            if day is not None:
                parsed = _day_start(day, end_of_day=end_of_day)
    except (ValueError, OverflowError):
        parsed = None
    if parsed is None:
        raise InvalidRequest(
            f"{name} must be an ISO 8601 date or time (e.g. 2026-01-05T12:00:00Z), not {text!r}."
        )
    return parsed


def _day_start(day: dt.date, *, end_of_day: bool) -> dt.datetime:
    """Midnight at the start of ``day``, or at its end (the next day's start)."""
    start = dt.datetime.combine(day, dt.time.min)
    return start + dt.timedelta(days=1) if end_of_day else start


#: dead-letter ids one plan may name (one IN list)
MAX_PLAN_IDS = IN_LIST_CHUNK


def _parse_ids(value: Any) -> tuple[uuid.UUID, ...]:
    """Dead-letter ids from a list or from text split by commas, spaces or lines."""
    if value in (None, ""):
        return ()
    parts = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    ids: list[uuid.UUID] = []
    for part in parts:
        try:
            key = part if isinstance(part, uuid.UUID) else uuid.UUID(str(part).strip())
        except ValueError:
            raise InvalidRequest(f"{str(part)[:40]!r} is not a dead letter id (a UUID).") from None
        if key not in ids:
            ids.append(key)
    if len(ids) > MAX_PLAN_IDS:
        raise InvalidRequest(
            f"A plan may name at most {MAX_PLAN_IDS} dead letters; use filters for more."
        )
    return tuple(ids)


@dataclasses.dataclass(frozen=True, slots=True)
class ReplayFilters:
    """Which open dead letters a replay plan or request covers. Empty fields match all."""

    reason_code: str = ""
    target_key: str = ""
    tenant_id: int | None = None
    tenant_name: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    #: chosen dead letters (the list's selection, a dead letter's Replay button)
    dead_letter_ids: tuple[uuid.UUID, ...] = ()

    @classmethod
    def parse(
        cls,
        *,
        reason_code: Any = None,
        target_key: Any = None,
        tenant: Any = None,
        since: Any = None,
        until: Any = None,
        dead_letter_ids: Any = None,
    ) -> ReplayFilters:
        """Validate raw input (form fields, command options); raises ``InvalidRequest``."""
        reason = str(reason_code or "").strip()
        if reason and reason not in DEAD_LETTER_REASONS:
            raise InvalidRequest(
                f"Unknown dead-letter reason {reason!r}; use one of "
                f"{', '.join(DEAD_LETTER_REASONS)}."
            )
        found = tenant_lookup(tenant)
        start = _parse_instant(since, name="since")
        end = _parse_instant(until, name="until", end_of_day=True)
        if start and end and start >= end:
            raise InvalidRequest("since must be before until.")
        return cls(
            reason_code=reason,
            target_key=str(target_key or "").strip(),
            tenant_id=found.pk if found else None,
            tenant_name=found.name if found else "",
            since=start,
            until=end,
            dead_letter_ids=_parse_ids(dead_letter_ids),
        )

    @classmethod
    def from_input(
        cls,
        data: Mapping[str, Any],
        *,
        reason: str = "reason",
        tenant: str = "tenant",
        dead_letters: str = "dead_letters",
    ) -> ReplayFilters:
        """The one mapping from input names to filters, for the plan form, the ``replay``
        command and the stored JSON alike: ``reason``, ``target``, ``tenant``, ``since``,
        ``until``, ``dead_letters``; a caller whose input names one differently says so."""
        return cls.parse(
            reason_code=data.get(reason),
            target_key=data.get("target"),
            tenant=data.get(tenant),
            since=data.get("since"),
            until=data.get("until"),
            dead_letter_ids=data.get(dead_letters),
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReplayFilters:
        """Filters as ``to_json`` stored them (the tenant by id; its name is for display)."""
        return cls.from_input(data, tenant="tenant_id")

    def to_json(self) -> dict[str, Any]:
        """The filters as stored on the request (only those set)."""
        data: dict[str, Any] = {
            "reason": self.reason_code,
            "target": self.target_key,
            "tenant_id": self.tenant_id,
            "tenant": self.tenant_name,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "dead_letters": [str(key) for key in self.dead_letter_ids] or None,
        }
        return {key: value for key, value in data.items() if value not in (None, "")}

    def describe(self) -> str:
        parts = [
            f"{key}={value}"
            for key, value in self.to_json().items()
            if key not in ("tenant_id", "dead_letters")
        ]
        if self.dead_letter_ids:
            count = len(self.dead_letter_ids)
            parts.insert(0, f"{count} chosen dead letter{'s' if count != 1 else ''}")
        return ", ".join(parts) or "all open dead letters"


def tenant_lookup(value: Any) -> Tenant | None:
    """A tenant by name, or by id when the value is a number; ``InvalidRequest`` if unknown."""
    if value in (None, ""):
        return None
    if isinstance(value, Tenant):
        return value
    text = str(value).strip()
    tenant = Tenant.objects.filter(name=text).first()
    if tenant is None and text.isdigit():
        tenant = Tenant.objects.filter(pk=int(text)).first()
    if tenant is None:
        raise InvalidRequest(f"No tenant {text!r}.")
    return tenant


def describe_stored_filters(data: Mapping[str, Any]) -> str:
    """A request's stored filters in words; the ids a request was made from say so."""
    if not data:
        return "dead letters named by id"
    parts = [
        f"{key}={value}" for key, value in data.items() if key not in ("tenant_id", "dead_letters")
    ]
    chosen = data.get("dead_letters") or []
    if chosen:
        parts.insert(0, f"{len(chosen)} chosen dead letter{'s' if len(chosen) != 1 else ''}")
    return ", ".join(parts)
