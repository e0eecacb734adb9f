"""Read queries of the dead-letter app: dead letters, evidence, replay requests, history.

Every list a staff user sees goes through ``tenant_ids_visible_to``: operators restricted
to some tenants never see, plan, request or decide another tenant's dead letters.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet
from django.utils.dateparse import parse_date, parse_datetime

from intents.models import ReasonCode
from portal.accounts.models import Tenant
from portal.accounts.roles import OPERATORS, tenant_ids_visible_to
from portal.audit.models import AuditEvent
from portal.errors import InvalidRequest

from .errors import DeadLetterNotFound, ReplayRequestNotFound
from .models import (
    DeadLetter,
    DeadLetterStatus,
    Evidence,
    ReplayItem,
    ReplayRequest,
    ReplayStatus,
)

# Reason codes a dead letter can carry (the terminal failures of CONTRACT.md).
DEAD_LETTER_REASONS = (
    ReasonCode.GATEWAY_REJECTED,
    ReasonCode.ATTEMPTS_EXHAUSTED,
    ReasonCode.DEADLINE_PASSED,
    ReasonCode.OUTCOME_UNKNOWN,
)


def _parse_instant(value: Any, *, name: str, end_of_day: bool = False) -> dt.datetime | None:
    """An aware UTC datetime from a datetime, an ISO 8601 string or a plain date."""
    if value in (None, ""):
        return None
    parsed: dt.datetime | None
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime.combine(value, dt.time.min)
        if end_of_day:
            parsed += dt.timedelta(days=1)
    else:
        text = str(value).strip()
        try:
            parsed = parse_datetime(text.replace("Z", "+00:00"))
            day = None if parsed is not None else parse_date(text)
        except ValueError:
            parsed, day = None, None
        if parsed is None and day is not None:
            parsed = dt.datetime.combine(day, dt.time.min)
            if end_of_day:
                parsed += dt.timedelta(days=1)
        if parsed is None:
            raise InvalidRequest(
                f"{name} must be an ISO 8601 date or time (e.g. 2026-01-05T12:00:00Z), "
                f"not {text!r}."
            )
    assert parsed is not None  # every branch above set it or raised
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


@dataclasses.dataclass(frozen=True, slots=True)
class ReplayFilters:
    """Which open dead letters a replay plan or request covers. Empty fields match all."""

    reason_code: str = ""
    target_key: str = ""
    tenant_id: int | None = None
    tenant_name: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    @classmethod
    def parse(
        cls,
        *,
        reason_code: Any = None,
        target_key: Any = None,
        tenant: Any = None,
        since: Any = None,
        until: Any = None,
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
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReplayFilters:
        return cls.parse(
            reason_code=data.get("reason"),
            target_key=data.get("target"),
            tenant=data.get("tenant_id"),
            since=data.get("since"),
            until=data.get("until"),
        )

    def to_json(self) -> dict[str, Any]:
        """The filters as stored on the request (only those set)."""
        data: dict[str, Any] = {
            "reason": self.reason_code,
            "target": self.target_key,
            "tenant_id": self.tenant_id,
            "tenant": self.tenant_name,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }
        return {key: value for key, value in data.items() if value not in (None, "")}

    def describe(self) -> str:
        parts = [f"{key}={value}" for key, value in self.to_json().items() if key != "tenant_id"]
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


def _restrict(queryset: QuerySet[Any], user: Any, *, tenant_field: str) -> QuerySet[Any]:
    if user is None:  # management commands: shell access is the platform's own
        return queryset
    visible = tenant_ids_visible_to(user)
    if visible is None:
        return queryset
    return queryset.filter(**{f"{tenant_field}__in": visible})


def dead_letters_visible_to(user: Any) -> QuerySet[DeadLetter]:
    return _restrict(DeadLetter.objects.all(), user, tenant_field="tenant")


def dead_letter_get(*, public_id: Any, user: Any = None) -> DeadLetter:
    """One dead letter by its public id; ``DeadLetterNotFound`` when unknown or not visible."""
    try:
        key = public_id if isinstance(public_id, uuid.UUID) else uuid.UUID(str(public_id))
    except ValueError:
        raise DeadLetterNotFound(f"No dead letter {public_id}.") from None
    queryset = dead_letters_visible_to(user).select_related("intent", "tenant", "assignee")
    found = queryset.filter(public_id=key).first()
    if found is None:
        raise DeadLetterNotFound(f"No dead letter {public_id}.")
    return found


def open_dead_letters_matching(*, filters: ReplayFilters, user: Any = None) -> QuerySet[DeadLetter]:
    """Open dead letters (not in any pending request) matching ``filters``, oldest first."""
    queryset = dead_letters_visible_to(user).filter(status=DeadLetterStatus.OPEN)
    if filters.reason_code:
        queryset = queryset.filter(reason_code=filters.reason_code)
    if filters.target_key:
        queryset = queryset.filter(target_key=filters.target_key)
    if filters.tenant_id is not None:
        queryset = queryset.filter(tenant_id=filters.tenant_id)
    if filters.since is not None:
        queryset = queryset.filter(created_at__gte=filters.since)
    if filters.until is not None:
        queryset = queryset.filter(created_at__lt=filters.until)
    return queryset.order_by("created_at", "id")


def replay_plan_sample(*, filters: ReplayFilters, user: Any = None) -> tuple[int, list[DeadLetter]]:
    """How many open dead letters match, and the first few of them."""
    matching = open_dead_letters_matching(filters=filters, user=user)
    sample_size = settings.REPLAY_PLAN_SAMPLE_SIZE
    sample = list(matching.select_related("intent", "tenant")[:sample_size])
    count = len(sample) if len(sample) < sample_size else matching.count()
    return count, sample


def dead_letters_by_public_ids(
    *, public_ids: list[Any], user: Any = None, for_update: bool = False
) -> tuple[list[DeadLetter], list[str]]:
    """The visible dead letters with these ids, and the ids that matched none."""
    keys: dict[uuid.UUID, str] = {}
    missing: list[str] = []
    for raw in public_ids:
        try:
            keys[uuid.UUID(str(raw).strip())] = str(raw).strip()
        except ValueError:
            missing.append(str(raw))
    queryset = dead_letters_visible_to(user)
    if for_update:
        queryset = queryset.select_for_update()
    found: list[DeadLetter] = []
    key_list = list(keys)
    for start in range(0, len(key_list), 500):  # SQL Server: at most 2,100 parameters
        found.extend(queryset.filter(public_id__in=key_list[start : start + 500]).order_by("id"))
    seen = {dead_letter.public_id for dead_letter in found}
    missing.extend(text for key, text in keys.items() if key not in seen)
    return found, missing


def evidence_for(*, dead_letter: DeadLetter) -> QuerySet[Evidence]:
    return dead_letter.evidence.select_related("created_by").order_by("created_at", "id")


def evidence_get(*, pk: int, user: Any) -> Evidence | None:
    """One evidence row whose dead letter ``user`` may see, or None."""
    return (
        Evidence.objects.select_related("dead_letter")
        .filter(pk=pk, dead_letter__in=dead_letters_visible_to(user))
        .first()
    )


def dead_letter_history(*, dead_letter: DeadLetter) -> list[AuditEvent]:
    """The audit events about this dead letter, oldest first."""
    return list(
        AuditEvent.objects.filter(
            object_type="dead_letter", object_id=str(dead_letter.public_id)
        ).order_by("sequence")
    )


def replay_items_for_dead_letter(*, dead_letter: DeadLetter) -> QuerySet[ReplayItem]:
    return (
        ReplayItem.objects.filter(dead_letter=dead_letter)
        .select_related("request", "request__requested_by", "request__decided_by")
        .order_by("request__created_at")
    )


def replay_requests_visible_to(user: Any) -> QuerySet[ReplayRequest]:
    """Requests all of whose dead letters ``user`` may see."""
    queryset = ReplayRequest.objects.all()
    if user is None:
        return queryset
    visible = tenant_ids_visible_to(user)
    if visible is None:
        return queryset
    foreign = ReplayItem.objects.exclude(dead_letter__tenant_id__in=visible)
    return queryset.exclude(pk__in=foreign.values("request_id"))


def replay_request_get(*, public_id: Any, user: Any = None) -> ReplayRequest:
    try:
        key = public_id if isinstance(public_id, uuid.UUID) else uuid.UUID(str(public_id))
    except ValueError:
        raise ReplayRequestNotFound(f"No replay request {public_id}.") from None
    found = (
        replay_requests_visible_to(user)
        .select_related("requested_by", "decided_by")
        .filter(public_id=key)
        .first()
    )
    if found is None:
        raise ReplayRequestNotFound(f"No replay request {public_id}.")
    return found


def replay_requests_awaiting_decision(*, user: Any, now: dt.datetime) -> QuerySet[ReplayRequest]:
    """The approvals queue: pending, unexpired requests that someone else asked for."""
    return (
        replay_requests_visible_to(user)
        .filter(status=ReplayStatus.PENDING, expires_at__gt=now)
        .exclude(requested_by=user)
        .select_related("requested_by")
        .annotate(item_count=Count("items"))
        .order_by("created_at")
    )


def replay_request_items(*, request: ReplayRequest) -> QuerySet[ReplayItem]:
    return request.items.select_related(
        "dead_letter", "dead_letter__intent", "dead_letter__tenant"
    ).order_by("id")


def replay_request_outcome_counts(*, request: ReplayRequest) -> dict[str, int]:
    rows = request.items.values("outcome").annotate(n=Count("id")).order_by()
    return {row["outcome"]: row["n"] for row in rows}


def expired_pending_requests(*, now: dt.datetime) -> QuerySet[ReplayRequest]:
    return ReplayRequest.objects.filter(status=ReplayStatus.PENDING, expires_at__lte=now).order_by(
        "expires_at"
    )


def replay_request_tenant_ids(*, request: ReplayRequest) -> set[int]:
    return set(request.items.values_list("dead_letter__tenant_id", flat=True).distinct())


def assignable_users() -> QuerySet[Any]:
    """Users a dead letter may be assigned to: active staff holding the operators role."""
    return (
        get_user_model()
        .objects.filter(
            Q(groups__name=OPERATORS) | Q(is_superuser=True), is_active=True, is_staff=True
        )
        .distinct()
        .order_by("username")
    )


def replay_requests_with_item_counts(*, user: Any) -> QuerySet[ReplayRequest]:
    """The replay requests ``user`` may see, for a list: people joined, items counted."""
    return (
        replay_requests_visible_to(user)
        .select_related("requested_by", "decided_by")
        .annotate(item_count=Count("items"))
    )
