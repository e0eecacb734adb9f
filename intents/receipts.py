"""Delivery receipts: a provider's word, after acceptance, on whether a message arrived.

``receipt_apply`` is the one write. The provider module has verified and parsed the
request already (``gateways.receipts``); here a receipt is matched to its intent by the
connection it arrived at and the provider's message id, stored, and applied to the
intent's ``delivery_status``:

- idempotent: a receipt equal to one stored for this generation changes nothing;
- monotonic: ``sent`` < ``delivered`` | ``undelivered``; a final status never changes,
  so a late ``sent`` (or a second, different final word) is stored and not applied;
- ``undelivered`` opens a dead letter (reason ``delivery_failed``) through the engine's
  one hook;
- a permanent code (a hard bounce, an unknown number, a complaint) suppresses the
  recipients it names (all the intent's, if it names none) whenever it is new, even if it
  arrived out of order and moves no status: the provider's word that a recipient cannot
  or must not be reached holds whatever it said about this one message.

Two clocks (docs/operations.md): ``occurred_at`` is the provider's, ``received_at`` and
``delivered_at`` ours; each latency figure uses one of them only.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from typing import TYPE_CHECKING, NamedTuple, TypeAlias, TypedDict

from django.db import transaction
from django.db.models import OuterRef, Subquery

from gateways.base import ParsedReceipt
from portal import clock
from portal.observability import metrics

from .models import (
    FINAL_DELIVERY_STATUSES,
    Attempt,
    AttemptOutcome,
    DeliveryStatus,
    Intent,
    IntentStatus,
    Receipt,
)
from .signals import intents_changed, intents_dead_lettered
from .suppressions import normalise, recipients_of, suppression_add

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

_RANK = {
    None: 0,
    "": 0,
    DeliveryStatus.UNKNOWN: 0,
    DeliveryStatus.SENT: 1,
    DeliveryStatus.DELIVERED: 2,
    DeliveryStatus.UNDELIVERED: 2,
}


class AcceptedAttempt(NamedTuple):
    """When the attempt that the provider accepted ran (our clock)."""

    started_at: dt.datetime
    finished_at: dt.datetime


class ReceiptResult(enum.StrEnum):
    APPLIED = "applied"  # stored, and the intent's delivery status moved
    STORED = "stored"  # stored; the status had moved past it already (out of order)
    DUPLICATE = "duplicate"  # the same report again: nothing changed
    IGNORED = "ignored"  # no accepted intent has this message id on this connection


def receipt_apply(
    *, connection: str, receipt: ParsedReceipt, now: dt.datetime | None = None
) -> ReceiptResult:
    """Store one verified receipt and apply it to its intent; one transaction."""
    if not receipt.message_id:
        return _counted(connection, ReceiptResult.IGNORED)
    now = now or clock.now()
    with transaction.atomic():
        intent = _locked_intent(connection=connection, message_id=receipt.message_id)
        # Not accepted (any more): the id is of an earlier generation that a replay
        # re-opened, or not ours at all.
        if intent is None or intent.status != IntentStatus.ACCEPTED:
            return _counted(connection, ReceiptResult.IGNORED)
        # One read of this generation's receipts serves the duplicate check and the
        # latency figure (each query is a round trip inside the receipt's transaction).
        earlier = list(
            Receipt.objects.filter(intent=intent, generation=intent.generation).only(
                "status", "provider_status", "error_code", "occurred_at", "flagged_before_attempt"
            )
        )
        if _is_duplicate(receipt, earlier):
            return _counted(connection, ReceiptResult.DUPLICATE)
        attempt = _accepted_attempt(intent)
        flagged = bool(
            receipt.occurred_at is not None
            and attempt is not None
            and receipt.occurred_at < attempt.started_at
        )
        applies = _RANK[receipt.status] > _RANK[intent.delivery_status]
        Receipt.objects.create(
            intent=intent,
            generation=intent.generation,
            connection=connection,
            message_id=receipt.message_id,
            status=receipt.status,
            provider_status=receipt.provider_status[:32],
            error_code=receipt.error_code[:64],
            occurred_at=receipt.occurred_at,
            received_at=now,
            flagged_before_attempt=flagged,
            applied=applies,
        )
        if receipt.permanent:
            _suppress(intent, connection, receipt, now)
        if not applies:
            return _counted(connection, ReceiptResult.STORED)
        _delivery_status_move(intent, receipt, now)
        if receipt.status in FINAL_DELIVERY_STATUSES:
            _observe_latency(receipt, flagged, attempt, earlier, now)
        return _counted(connection, ReceiptResult.APPLIED)


class _AcceptedAttemptAnnotations(TypedDict):
    accepted_started_at: dt.datetime | None
    accepted_finished_at: dt.datetime | None


if TYPE_CHECKING:
    IntentWithAcceptedAttempt: TypeAlias = WithAnnotations[Intent, _AcceptedAttemptAnnotations]


def _locked_intent(*, connection: str, message_id: str) -> IntentWithAcceptedAttempt | None:
    """The newest intent that sent ``message_id`` through ``connection``, locked.

    The accepted attempt of the intent's generation comes with the intent, in the same
    statement: one round trip fewer inside the transaction.
    """
    accepted = Attempt.objects.filter(
        intent=OuterRef("pk"), generation=OuterRef("generation"), outcome=AttemptOutcome.ACCEPTED
    ).order_by("-number")
    intent: IntentWithAcceptedAttempt | None = (
        Intent.objects.select_for_update()
        .filter(gateway_message_id=message_id, connection=connection)
        .annotate(
            accepted_started_at=Subquery(accepted.values("started_at")[:1]),
            accepted_finished_at=Subquery(accepted.values("finished_at")[:1]),
        )
        .order_by("-id")
        .first()
    )
    return intent


def _accepted_attempt(intent: IntentWithAcceptedAttempt) -> AcceptedAttempt | None:
    started, finished = intent.accepted_started_at, intent.accepted_finished_at
    # Both or neither: they are the same attempt row's (None when there is none).
    if started is None or finished is None:
        return None
    return AcceptedAttempt(started, finished)


def _is_duplicate(receipt: ParsedReceipt, earlier: list[Receipt]) -> bool:
    """The same report as one stored, as stored (the provider's strings truncated)."""
    same = (
        receipt.status,
        receipt.provider_status[:32],
        receipt.error_code[:64],
        receipt.occurred_at,
    )
    return any((r.status, r.provider_status, r.error_code, r.occurred_at) == same for r in earlier)


def _delivery_status_move(intent: Intent, receipt: ParsedReceipt, now: dt.datetime) -> None:
    """The intent takes the receipt's status; a final one is announced, a failure is a
    dead letter (reason ``delivery_failed``)."""
    intent.delivery_status = receipt.status
    intent.updated_at = now
    if receipt.status == DeliveryStatus.DELIVERED:
        intent.delivered_at = now
    intent.save(update_fields=["delivery_status", "delivered_at", "updated_at"])
    if receipt.status in FINAL_DELIVERY_STATUSES:
        intents_changed.send(sender=Intent, changes=[(intent, str(receipt.status))], now=now)
    if receipt.status == DeliveryStatus.UNDELIVERED:
        intents_dead_lettered.send(sender=Intent, intents=[intent], now=now)


def _suppress(intent: Intent, connection: str, receipt: ParsedReceipt, now: dt.datetime) -> None:
    """The intent's recipients the receipt names on the tenant's list, in its transaction."""
    channel = intent.contract["gateway"]
    payload = json.loads(bytes(Intent.objects.values_list("payload", flat=True).get(pk=intent.pk)))
    named = {normalise(channel, r) for r in receipt.recipients}
    for recipient in recipients_of(channel, payload):
        if named and recipient not in named:
            continue
        suppression_add(
            tenant_id=intent.tenant_id,
            channel=channel,
            recipient=recipient,
            connection=connection,
            provider_code=receipt.error_code,
            reason=f"delivery receipt: {receipt.provider_status} {receipt.error_code}".strip(),
            intent_public_id=intent.public_id,
            now=now,
        )


def _observe_latency(
    receipt: ParsedReceipt,
    flagged: bool,
    attempt: AcceptedAttempt | None,
    earlier: list[Receipt],
    now: dt.datetime,
) -> None:
    """Acceptance to final status, once per clock, never across them, never negative.

    ours: our acceptance (the attempt's end) to our receipt of the final word.
    provider: the provider's earliest report on this message to its final one, when it
    sent an earlier one and neither is dated before our attempt.
    """
    figures: dict[str, float] = {}
    if attempt is not None:
        figures["ours"] = max(0.0, (now - attempt.finished_at).total_seconds())
    first = min(
        (r.occurred_at for r in earlier if r.occurred_at and not r.flagged_before_attempt),
        default=None,
    )
    if first is not None and receipt.occurred_at is not None and not flagged:
        figures["provider"] = max(0.0, (receipt.occurred_at - first).total_seconds())

    def observe() -> None:
        for clock_name, seconds in figures.items():
            metrics.DELIVERY_LATENCY.labels(clock=clock_name, status=receipt.status).observe(
                seconds
            )

    transaction.on_commit(observe)


def _counted(connection: str, result: ReceiptResult) -> ReceiptResult:
    metrics.RECEIPTS.labels(connection=connection, result=result.value).inc()
    return result
