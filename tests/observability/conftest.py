"""Rows for the operations tests, written straight through the ORM.

The numbers the metrics, the dashboard and the purge report are checked against
counts taken from the database, so the factories stay small and explicit: every
timestamp is relative to the frozen engine clock (``frozen_clock.now``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import logging
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest

from deadletters.models import DeadLetter, Evidence, ReplayItem, ReplayRequest
from intents.models import Attempt, Intent, Target, TargetRevision
from portal.observability.logging import StructuredFormatter

SMS_CONTRACT: dict[str, Any] = {
    "key": "sms.otp",
    "version": "1.0",
    "gateway": "sms",
    "description": "",
    "attempt_timeout_s": 5.0,
    "acceptance_deadline_s": 600.0,
    "retry": {
        "strategy": "fixed",
        "initial_delay_s": 1.0,
        "multiplier": 1.0,
        "max_delay_s": 1.0,
        "max_attempts": 3,
    },
    "schema": {"type": "object"},
    "sensitive_fields": ["text"],
}
PUSH_CONTRACT: dict[str, Any] = {
    **SMS_CONTRACT,
    "key": "push.alert",
    "gateway": "push",
    "acceptance_deadline_s": 60.0,
    "sensitive_fields": [],
}


class Rows:
    """Creates intents, attempts, dead letters, evidence and replays at chosen times."""

    def __init__(self, tenant: Any, now: dt.datetime) -> None:
        self.tenant = tenant
        self.now = now
        self._seq = itertools.count(1)
        self._revisions: dict[str, TargetRevision] = {}
        self._user: Any = None

    def ago(self, **delta: float) -> dt.datetime:
        return self.now - dt.timedelta(**delta)

    def revision(self, contract: dict[str, Any]) -> TargetRevision:
        key = contract["key"]
        if key not in self._revisions:
            target = Target.objects.create(key=key)
            revision = TargetRevision.objects.create(
                target=target,
                version=contract["version"],
                major=1,
                minor=0,
                gateway=contract["gateway"],
                contract=contract,
                checksum=hashlib.sha256(json.dumps(contract).encode()).hexdigest(),
                source_path=f"{key}.toml",
                created_by="tests",
            )
            target.current_revision = revision
            target.save(update_fields=["current_revision"])
            self._revisions[key] = revision
        return self._revisions[key]

    def intent(
        self,
        *,
        contract: dict[str, Any] = SMS_CONTRACT,
        status: str = "pending",
        created_at: dt.datetime | None = None,
        finished_at: dt.datetime | None = None,
        next_attempt_at: dt.datetime | None = None,
        lease_expires_at: dt.datetime | None = None,
        attempts_count: int = 0,
        reason_code: str = "",
        correlation_id: str = "",
    ) -> Intent:
        revision = self.revision(contract)
        created_at = created_at or self.now
        n = next(self._seq)
        payload = json.dumps({"to": f"+1555010{n:04d}", "text": "hello"}).encode()
        return Intent.objects.create(
            tenant=self.tenant,
            idempotency_key=f"key-{n}",
            target=revision.target,
            target_key=contract["key"],
            contract_version=contract["version"],
            target_revision=revision,
            contract=contract,
            payload=payload,
            payload_sha256=hashlib.sha256(payload).hexdigest(),
            status=status,
            attempts_count=attempts_count,
            max_attempts=contract["retry"]["max_attempts"],
            attempt_timeout_s=contract["attempt_timeout_s"],
            next_attempt_at=next_attempt_at,
            lease_owner="worker-1" if lease_expires_at else "",
            lease_expires_at=lease_expires_at,
            deadline_at=created_at + dt.timedelta(seconds=contract["acceptance_deadline_s"]),
            reason_code=reason_code,
            correlation_id=correlation_id,
            created_at=created_at,
            updated_at=finished_at or created_at,
            finished_at=finished_at,
        )

    def attempt(
        self,
        intent: Intent,
        *,
        outcome: str,
        finished_at: dt.datetime,
        number: int | None = None,
        connection: str = "",
    ) -> Attempt:
        number = number or (Attempt.objects.filter(intent=intent).count() + 1)
        return Attempt.objects.create(
            intent=intent,
            number=number,
            generation=intent.generation,
            started_at=finished_at - dt.timedelta(milliseconds=120),
            finished_at=finished_at,
            duration_ms=120,
            outcome=outcome,
            connection=connection,
        )

    def dead_letter(
        self,
        intent: Intent,
        *,
        status: str = "open",
        reason_code: str = "attempts_exhausted",
        created_at: dt.datetime | None = None,
        retention_until: dt.datetime | None = None,
    ) -> DeadLetter:
        created_at = created_at or intent.finished_at or self.now
        return DeadLetter.objects.create(
            intent=intent,
            tenant=intent.tenant,
            target_key=intent.target_key,
            generation=intent.generation,
            reason_code=reason_code,
            status=status,
            retention_until=retention_until or created_at + dt.timedelta(days=90),
            created_at=created_at,
            updated_at=created_at,
        )

    @property
    def user(self) -> Any:
        if self._user is None:
            from django.contrib.auth import get_user_model

            self._user = get_user_model().objects.create_user("operator-rows", is_staff=True)
        return self._user

    def evidence(self, dead_letter: DeadLetter, *, file_name: str = "") -> Evidence:
        from django.core.files.base import ContentFile

        evidence = Evidence(
            dead_letter=dead_letter,
            kind="file" if file_name else "note",
            note="" if file_name else "called the provider",
            created_by=self.user,
            created_at=self.now,
        )
        if file_name:
            evidence.file.save(file_name, ContentFile(b"provider ticket 4711"), save=False)
        evidence.save()
        return evidence

    def replay(self, dead_letters: list[DeadLetter], *, status: str) -> ReplayRequest:
        request = ReplayRequest.objects.create(
            reason="provider fixed",
            status=status,
            requested_by=self.user,
            created_at=self.now,
            expires_at=self.now + dt.timedelta(days=1),
        )
        for dead_letter in dead_letters:
            ReplayItem.objects.create(request=request, dead_letter=dead_letter)
        return request


@pytest.fixture
def rows(db, tenant, frozen_clock) -> Rows:
    return Rows(tenant, frozen_clock.now)


class LogCapture:
    """Every record, formatted by the production formatter, one JSON object per line."""

    def __init__(self) -> None:
        self.stream = StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("event") == name]


@pytest.fixture
def log_capture() -> Iterator[LogCapture]:
    capture = LogCapture()
    handler = logging.StreamHandler(capture.stream)
    handler.setFormatter(StructuredFormatter(json=True))
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield capture
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
