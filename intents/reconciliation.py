"""Reconciliation, the intents' part: an intent whose last attempt timed out is recorded
as accepted once its gateway confirms it (``portal.observability.reconciliation`` asks
the gateways and settles the dead letters alongside, in the same transaction).
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from portal.audit.services import Actor, audit_record
from portal.observability import metrics
from portal.sql_limits import column_width

from .models import (
    DEAD_LETTER_STATUSES,
    Attempt,
    AttemptOutcome,
    DeliveryStatus,
    Intent,
    IntentStatus,
    ReasonCode,
)
from .transitions import FINISHED_FIELDS, finish

MESSAGE_ID_MAX = column_width(Intent, "gateway_message_id")


def intent_lock_timed_out(*, intent_id: int) -> tuple[Intent, str | None]:
    """Lock the intent for the caller's transaction; return it and why it can no longer be
    reconciled (``None``: it is still retrying or dead-lettered after a timed-out attempt).
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("intent_lock_timed_out needs the caller's transaction.")
    intent = Intent.objects.select_for_update().get(pk=intent_id)
    if intent.status != IntentStatus.PENDING and intent.status not in DEAD_LETTER_STATUSES:
        return intent, f"the intent is {intent.status} now"
    last = Attempt.objects.filter(intent=intent).order_by("-number").first()
    if last is None or last.outcome != AttemptOutcome.TIMEOUT:
        return intent, "a later attempt ran meanwhile"
    return intent, None


def intent_record_reconciled(
    *,
    intent: Intent,
    gateway_message_id: str,
    dead_letters_resolved: int,
    actor: Actor,
    now: dt.datetime,
) -> str:
    """Record a locked intent (``intent_lock_timed_out``) as accepted with its audit event
    (``intent.reconciled``). Returns the status it had."""
    previous = intent.status
    with transaction.atomic():
        finish(
            intent, status=IntentStatus.ACCEPTED, reason_code=ReasonCode.GATEWAY_ACCEPTED, now=now
        )
        intent.gateway_message_id = gateway_message_id[:MESSAGE_ID_MAX]
        # Settled by a status lookup, not a send: whether a receipt follows is not known.
        intent.delivery_status = DeliveryStatus.UNKNOWN
        intent.save(update_fields=[*FINISHED_FIELDS, "gateway_message_id", "delivery_status"])
        audit_record(
            actor=actor,
            action="intent.reconciled",
            object_type="intent",
            object_id=str(intent.public_id),
            data={
                "previous_status": previous,
                "gateway_message_id": intent.gateway_message_id,
                "dead_letters_resolved": dead_letters_resolved,
            },
        )
        if previous == IntentStatus.PENDING:  # it had not been counted as finished yet
            transaction.on_commit(
                lambda: metrics.INTENTS_FINISHED.labels(reason=ReasonCode.GATEWAY_ACCEPTED).inc()
            )
    return previous
