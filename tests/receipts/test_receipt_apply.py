"""receipt_apply: idempotent, monotonic, dual time, dead letters and suppression."""

from __future__ import annotations

import datetime as dt

import pytest

from deadletters.models import DeadLetter
from gateways.base import ParsedReceipt
from intents.models import Intent, Receipt, Suppression
from intents.receipts import ReceiptResult, receipt_apply

pytestmark = pytest.mark.django_db


def receipt(intent: Intent, status: str, *, at: dt.datetime | None = None, **kwargs):
    return ParsedReceipt(
        message_id=intent.gateway_message_id,
        status=status,
        provider_status=status,
        occurred_at=at,
        **kwargs,
    )


def apply(intent: Intent, status: str, **kwargs) -> ReceiptResult:
    return receipt_apply(connection="scripted", receipt=receipt(intent, status, **kwargs))


def test_acceptance_sets_sent_and_a_delivered_receipt_finishes_it(accepted, frozen_clock) -> None:
    intent = accepted()
    assert intent.status == "accepted" and intent.delivery_status == "sent"
    assert intent.delivered_at is None
    frozen_clock.advance(3)
    at = dt.datetime(2026, 1, 5, 12, 0, 2, tzinfo=dt.UTC)
    assert apply(intent, "delivered", at=at) == ReceiptResult.APPLIED
    intent.refresh_from_db()
    assert intent.delivery_status == "delivered"
    assert intent.delivered_at == dt.datetime(2026, 1, 5, 12, 0, 3, tzinfo=dt.UTC)  # ours
    row = Receipt.objects.get()
    assert (row.status, row.occurred_at, row.received_at) == ("delivered", at, intent.delivered_at)
    assert not row.flagged_before_attempt and row.applied


def test_a_repeated_receipt_changes_nothing(accepted, frozen_clock) -> None:
    intent = accepted()
    at = dt.datetime(2026, 1, 5, 12, 0, 2, tzinfo=dt.UTC)
    assert apply(intent, "delivered", at=at) == ReceiptResult.APPLIED
    frozen_clock.advance(10)
    assert apply(intent, "delivered", at=at) == ReceiptResult.DUPLICATE
    assert Receipt.objects.count() == 1
    intent.refresh_from_db()
    assert intent.delivered_at == dt.datetime(2026, 1, 5, 12, 0, 0, tzinfo=dt.UTC)


def test_a_late_sent_after_delivered_is_stored_and_not_applied(accepted) -> None:
    intent = accepted()
    apply(intent, "delivered", at=dt.datetime(2026, 1, 5, 12, 0, 2, tzinfo=dt.UTC))
    late = apply(intent, "sent", at=dt.datetime(2026, 1, 5, 12, 0, 1, tzinfo=dt.UTC))
    assert late == ReceiptResult.STORED
    intent.refresh_from_db()
    assert intent.delivery_status == "delivered"
    assert [(r.status, r.applied) for r in Receipt.objects.order_by("id")] == [
        ("delivered", True),
        ("sent", False),
    ]


def test_a_final_status_never_changes(accepted) -> None:
    intent = accepted()
    apply(intent, "undelivered", error_code="30003")
    assert apply(intent, "delivered") == ReceiptResult.STORED
    intent.refresh_from_db()
    assert intent.delivery_status == "undelivered" and intent.delivered_at is None
    assert DeadLetter.objects.get().reason_code == "delivery_failed"


def test_an_unknown_message_id_is_ignored(accepted) -> None:
    accepted()
    unknown = ParsedReceipt(message_id="nobody-sent-this", status="delivered")
    assert receipt_apply(connection="scripted", receipt=unknown) == ReceiptResult.IGNORED
    other = accepted()
    # The right id at the wrong connection is not ours either.
    assert receipt_apply(connection="elsewhere", receipt=receipt(other, "delivered")) == (
        ReceiptResult.IGNORED
    )
    assert not Receipt.objects.exists()


def test_undelivered_opens_a_replayable_dead_letter_without_suppressing(accepted) -> None:
    intent = accepted()
    assert apply(intent, "undelivered", error_code="30003") == ReceiptResult.APPLIED
    intent.refresh_from_db()
    # The gateway did accept it: the intent's own status and reason stay.
    assert (intent.status, intent.reason_code) == ("accepted", "gateway_accepted")
    assert intent.delivery_status == "undelivered"
    dead = DeadLetter.objects.get()
    assert (dead.intent_id, dead.generation, dead.reason_code, dead.status) == (
        intent.pk,
        1,
        "delivery_failed",
        "open",
    )
    assert not Suppression.objects.exists()

    from intents.services import intent_reopen

    intent_reopen(intent=intent)
    reopened = Intent.objects.get(pk=intent.pk)  # as stored, not as returned
    assert (reopened.status, reopened.generation, reopened.delivery_status) == ("pending", 2, None)
    assert reopened.delivered_at is None


def test_undelivered_with_a_permanent_code_suppresses_the_recipient(accepted) -> None:
    intent = accepted(to="+15550100410")
    apply(intent, "undelivered", error_code="30005", permanent=True)
    row = Suppression.objects.get()
    assert (row.channel, row.recipient_masked, row.provider_code) == (
        "sms",
        "+1555•••0410",
        "30005",
    )


def _latency(clock_name: str) -> tuple[float, float]:
    from portal.observability import metrics

    values = {
        s.name: s.value
        for metric in metrics.DELIVERY_LATENCY.collect()
        for s in metric.samples
        if s.labels.get("status") == "delivered" and s.labels.get("clock") == clock_name
    }
    return (
        values.get("portal_delivery_latency_seconds_count", 0.0),
        values.get("portal_delivery_latency_seconds_sum", 0.0),
    )


def test_a_receipt_dated_before_the_attempt_is_flagged_and_latency_stays_non_negative(
    accepted, frozen_clock, django_capture_on_commit_callbacks
) -> None:
    intent = accepted()
    before = dt.datetime(2026, 1, 5, 11, 59, 0, tzinfo=dt.UTC)  # the provider's clock is behind
    ours, provider = _latency("ours"), _latency("provider")
    frozen_clock.advance(2)
    with django_capture_on_commit_callbacks(execute=True):
        apply(intent, "sent", at=before)
        apply(intent, "delivered", at=before + dt.timedelta(seconds=1))
    rows = list(Receipt.objects.order_by("id"))
    assert [r.flagged_before_attempt for r in rows] == [True, True]
    intent.refresh_from_db()
    assert intent.delivered_at >= intent.finished_at  # our clock only
    count, total = _latency("ours")
    assert count == ours[0] + 1 and total - ours[1] == pytest.approx(2.0, abs=0.05)
    assert _latency("provider") == provider  # flagged: no provider-clock figure at all


def test_provider_clock_latency_runs_from_its_first_report_to_its_final_one(
    accepted, django_capture_on_commit_callbacks
) -> None:
    intent = accepted()
    provider = _latency("provider")
    with django_capture_on_commit_callbacks(execute=True):
        apply(intent, "sent", at=dt.datetime(2026, 1, 5, 12, 0, 1, tzinfo=dt.UTC))
        apply(intent, "delivered", at=dt.datetime(2026, 1, 5, 12, 0, 6, tzinfo=dt.UTC))
    count, total = _latency("provider")
    assert count == provider[0] + 1 and total - provider[1] == pytest.approx(5.0)


def test_a_connection_without_receipts_leaves_delivery_unknown(engine) -> None:
    from tests.connections.conftest import scripted_connection, sms_target

    engine.folders.connection("quiet", scripted_connection("quiet"))
    engine.folders.target("sms_routed", sms_target("sms.routed", ["quiet"]))
    engine.folders.sync()
    intent = engine.submit()
    engine.run()
    assert Intent.objects.get(pk=intent.pk).delivery_status == "unknown"
