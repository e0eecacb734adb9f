"""Dead letters: created from the engine's hook, then assigned, resolved or discarded."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import transaction

from intents.models import Intent
from portal import clock
from portal.accounts.roles import OPERATORS, has_role, require_tenant_visible
from portal.audit.services import Actor, audit_record
from portal.errors import InvalidRequest
from portal.observability.metrics import DEAD_LETTERS
from portal.sql_limits import IN_LIST_CHUNK

from ..errors import InvalidTransition
from ..models import UNSETTLED_STATUSES, DeadLetter, DeadLetterStatus
from ._common import MAX_REASON_CHARS, lock_dead_letter, require_text


def dead_letters_create_for(*, intents: Iterable[Intent], now: dt.datetime) -> list[DeadLetter]:
    """One open dead letter per (intent, generation) that has none yet.

    Called by the ``intents_dead_lettered`` receiver inside the engine's recording
    transaction, so the dead letters commit or roll back with the intents' new state.
    """
    candidates = {
        (intent.pk, intent.generation): intent
        for intent in intents
        if intent.dead_letter_reason is not None
    }
    if not candidates:
        return []
    intent_ids = sorted({intent_id for intent_id, _ in candidates})
    existing: set[tuple[int, int]] = set()
    retention_until = now + dt.timedelta(days=settings.DEAD_LETTER_RETENTION_DAYS)
    with transaction.atomic():
        for start in range(0, len(intent_ids), IN_LIST_CHUNK):
            existing.update(
                DeadLetter.objects.filter(
                    intent_id__in=intent_ids[start : start + IN_LIST_CHUNK]
                ).values_list("intent_id", "generation")
            )
        rows = [
            DeadLetter(
                intent_id=intent.pk,
                tenant_id=intent.tenant_id,
                target_key=intent.target_key,
                generation=intent.generation,
                reason_code=intent.dead_letter_reason or intent.reason_code,
                status=DeadLetterStatus.OPEN,
                retention_until=retention_until,
                created_at=now,
                updated_at=now,
            )
            for key, intent in sorted(candidates.items())
            if key not in existing
        ]
        DeadLetter.objects.bulk_create(rows, batch_size=100)

        def count() -> None:
            for row in rows:
                DEAD_LETTERS.labels(reason=row.reason_code).inc()

        transaction.on_commit(count)
    return rows


def dead_letter_assign(
    *,
    dead_letter: DeadLetter,
    actor: Any,
    assignee: Any | None,
    ip_address: str | None = None,
) -> DeadLetter:
    """Give a dead letter to an operator (``None`` takes it back) while it is unsettled."""
    if assignee is not None and not (
        assignee.is_active and assignee.is_staff and has_role(assignee, OPERATORS)
    ):
        raise InvalidRequest(f"{assignee.get_username()} is not an active operator.")
    with transaction.atomic():
        locked = lock_dead_letter(dead_letter=dead_letter, actor=actor)
        if locked.status not in UNSETTLED_STATUSES:
            raise InvalidTransition(f"Dead letter {locked.public_id} is already {locked.status}.")
        if assignee is not None:
            require_tenant_visible(assignee, locked.tenant_id)
        previous = locked.assignee.get_username() if locked.assignee else None
        locked.assignee = assignee
        locked.updated_at = clock.now()
        locked.save(update_fields=["assignee", "updated_at"])
        audit_record(
            actor=Actor.user(actor),
            action="dead_letter.assigned",
            object_type="dead_letter",
            object_id=str(locked.public_id),
            data={
                "assignee": assignee.get_username() if assignee else None,
                "previous": previous,
            },
            ip_address=ip_address,
        )
    return locked


def _close(
    *,
    dead_letter: DeadLetter,
    actor: Any,
    reason: str,
    status: DeadLetterStatus,
    action: str,
    ip_address: str | None,
) -> DeadLetter:
    text = require_text(reason, name="reason", max_chars=MAX_REASON_CHARS)
    with transaction.atomic():
        locked = lock_dead_letter(dead_letter=dead_letter, actor=actor)
        if locked.status != DeadLetterStatus.OPEN:
            hint = (
                " (decide its replay request first)"
                if locked.status == DeadLetterStatus.REPLAY_PENDING
                else ""
            )
            raise InvalidTransition(
                f"Only open dead letters can be {status}; {locked.public_id} is "
                f"{locked.status}{hint}."
            )
        _settle(
            locked,
            status=status,
            action=action,
            actor=Actor.user(actor),
            reason=text,
            intent_public_id=locked.intent.public_id,
            now=clock.now(),
            ip_address=ip_address,
        )
    return locked


def _settle(
    locked: DeadLetter,
    *,
    status: DeadLetterStatus,
    action: str,
    actor: Actor,
    reason: str,
    intent_public_id: object,
    now: dt.datetime,
    ip_address: str | None = None,
) -> None:
    """Write a locked dead letter's closing status with its audit event."""
    locked.status = status
    locked.updated_at = now
    locked.save(update_fields=["status", "updated_at"])
    audit_record(
        actor=actor,
        action=action,
        object_type="dead_letter",
        object_id=str(locked.public_id),
        data={"reason": reason, "intent": str(intent_public_id)},
        ip_address=ip_address,
    )


def dead_letter_resolve(
    *, dead_letter: DeadLetter, actor: Any, reason: str, ip_address: str | None = None
) -> DeadLetter:
    """Close an open dead letter as handled outside a replay (``open`` → ``resolved``)."""
    return _close(
        dead_letter=dead_letter,
        actor=actor,
        reason=reason,
        status=DeadLetterStatus.RESOLVED,
        action="dead_letter.resolved",
        ip_address=ip_address,
    )


def dead_letter_discard(
    *, dead_letter: DeadLetter, actor: Any, reason: str, ip_address: str | None = None
) -> DeadLetter:
    """Close an open dead letter as not worth delivering (``open`` → ``discarded``)."""
    return _close(
        dead_letter=dead_letter,
        actor=actor,
        reason=reason,
        status=DeadLetterStatus.DISCARDED,
        action="dead_letter.discarded",
        ip_address=ip_address,
    )


def dead_letters_resolve_for_intent(
    *, intent: Intent, actor: Actor, reason: str, now: dt.datetime
) -> int:
    """Resolve the open dead letters of ``intent``'s current generation, each audited
    (``dead_letter.resolved``), in the caller's transaction: the intent was settled
    outside a replay (reconciliation). Returns how many were resolved."""
    with transaction.atomic():
        open_letters = DeadLetter.objects.select_for_update().filter(
            intent=intent, generation=intent.generation, status=DeadLetterStatus.OPEN
        )
        resolved = 0
        for locked in open_letters.order_by("pk"):
            _settle(
                locked,
                status=DeadLetterStatus.RESOLVED,
                action="dead_letter.resolved",
                actor=actor,
                reason=reason,
                intent_public_id=intent.public_id,
                now=now,
            )
            resolved += 1
    return resolved
