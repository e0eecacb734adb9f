"""Internal deliveries: intents the service makes on its own account.

A client webhook event is delivered by the same engine as a client's intent (retries,
dead letters, replay), so it is stored as an intent, marked ``internal``: never shown
to a client through the intents API, outside the open-intent quota, and the events
outbox raises no event about it. Its target is a built-in, inactive registry entry
(``internal:<purpose>``, a key no target file may use), so it can never be submitted
to or listed; each intent's frozen contract names the one connection it goes out
through.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import uuid
from typing import Any

from gateways.connections import canonical_json

from .models import Intent, IntentStatus, ReasonCode, Target, TargetRevision
from .services import canonical_payload

INTERNAL_PREFIX = "internal:"


@dataclasses.dataclass(frozen=True, slots=True)
class InternalDelivery:
    tenant_id: int
    public_id: uuid.UUID  # also what the receiver sees as the idempotency key
    payload: dict[str, Any]
    connection: str  # the one connection it goes out through


def internal_target_key(purpose: str) -> str:
    return f"{INTERNAL_PREFIX}{purpose}"


def _internal_target(purpose: str, contract: dict[str, Any]) -> tuple[Target, TargetRevision]:
    """The built-in target of ``purpose`` with a revision of ``contract``, made on first
    use (a savepoint each, so a concurrent first use cannot break the caller's
    transaction)."""
    target, _ = Target.objects.get_or_create(
        key=internal_target_key(purpose), defaults={"is_active": False}
    )
    checksum = hashlib.sha256(canonical_json(contract).encode()).hexdigest()
    revision = target.revisions.filter(checksum=checksum).first()
    if revision is None:
        revision = TargetRevision.objects.create(
            target=target,
            version="1.0",
            major=1,
            minor=0,
            gateway=contract["gateway"],
            contract=contract,
            checksum=checksum,
            source_path="(built in)",
            created_by="system",
        )
        target.current_revision = revision
        target.save(update_fields=["current_revision", "updated_at"])
    return target, revision


def internal_deliveries_create(
    *,
    purpose: str,
    contract: dict[str, Any],
    deliveries: list[InternalDelivery],
    now: dt.datetime,
) -> None:
    """Store one pending internal intent per delivery, in the caller's transaction; due
    at once. ``contract`` holds ``gateway``, ``retry``, ``attempt_timeout_s`` and
    ``acceptance_deadline_s``; each intent's snapshot adds its connection."""
    if not deliveries:
        return
    target, revision = _internal_target(purpose, contract)
    deadline_at = now + dt.timedelta(seconds=contract["acceptance_deadline_s"])
    rows = []
    for delivery in deliveries:
        payload = canonical_payload(delivery.payload)
        rows.append(
            Intent(
                public_id=delivery.public_id,
                tenant_id=delivery.tenant_id,
                idempotency_key=f"{purpose}:{delivery.public_id}",
                target=target,
                target_key=target.key,
                contract_version=revision.version,
                target_revision=revision,
                contract={**contract, "connections": [delivery.connection]},
                payload=payload,
                payload_sha256=hashlib.sha256(payload).hexdigest(),
                status=IntentStatus.PENDING,
                max_attempts=contract["retry"]["max_attempts"],
                attempt_timeout_s=contract["attempt_timeout_s"],
                next_attempt_at=now,
                deadline_at=deadline_at,
                internal=True,
                created_at=now,
                updated_at=now,
            )
        )
    Intent.objects.bulk_create(rows, batch_size=100)


def internal_deliveries_cancel(*, public_ids: Any, now: dt.datetime) -> int:
    """Cancel the open internal deliveries among ``public_ids`` (a list or a subquery of
    public ids) because their destination is gone: pending ones at once, an in-flight one
    when its attempt is recorded. Returns how many were cancelled at once."""
    open_ones = Intent.objects.filter(public_id__in=public_ids, internal=True)
    open_ones.filter(status=IntentStatus.IN_FLIGHT).update(cancel_requested=True, updated_at=now)
    return open_ones.filter(status=IntentStatus.PENDING).update(
        status=IntentStatus.CANCELLED,
        reason_code=ReasonCode.CANCELLED_BY_CLIENT,
        finished_at=now,
        next_attempt_at=None,
        cancel_requested=True,
        updated_at=now,
    )
