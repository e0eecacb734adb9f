"""Terminal failures become dead letters through the engine's hook, in its transaction."""

from __future__ import annotations

import datetime as dt

import pytest

from deadletters.models import DeadLetter, DeadLetterStatus
from intents.dispatch import run_once
from intents.models import Intent, IntentStatus, ReasonCode
from intents.services import intent_cancel
from intents.signals import intents_dead_lettered

from .conftest import REJECTED, TRANSIENT

pytestmark = pytest.mark.django_db


def test_permanent_rejection_makes_one_open_dead_letter(frozen_clock, dead_lettered, settings):
    intent = dead_lettered(REJECTED)
    assert intent.status == IntentStatus.FAILED
    dead_letter = DeadLetter.objects.get()
    assert dead_letter.intent == intent
    assert dead_letter.status == DeadLetterStatus.OPEN
    assert dead_letter.reason_code == ReasonCode.GATEWAY_REJECTED
    assert dead_letter.generation == 1
    assert dead_letter.tenant_id == intent.tenant_id
    assert dead_letter.target_key == "sms.fast"
    assert dead_letter.created_at == frozen_clock.now
    assert dead_letter.retention_until == frozen_clock.now + dt.timedelta(
        days=settings.DEAD_LETTER_RETENTION_DAYS
    )


def test_exhausted_budget_makes_one_dead_letter(dead_lettered):
    intent = dead_lettered(TRANSIENT)
    assert intent.status == IntentStatus.EXHAUSTED
    assert intent.attempts_count == 3
    # Two transient failures before the last one made no dead letter of their own.
    assert list(DeadLetter.objects.values_list("intent_id", "reason_code", "generation")) == [
        (intent.pk, ReasonCode.ATTEMPTS_EXHAUSTED, 1)
    ]


def test_passed_deadline_makes_one_dead_letter(frozen_clock, scripted, submit):
    intent = submit(deadline_seconds=5)
    frozen_clock.advance(10)  # nobody dispatched in time
    run_once()
    intent.refresh_from_db()
    assert intent.status == IntentStatus.EXPIRED
    dead_letter = DeadLetter.objects.get()
    assert (dead_letter.intent_id, dead_letter.reason_code) == (
        intent.pk,
        ReasonCode.DEADLINE_PASSED,
    )


def test_accepted_and_cancelled_intents_make_none(frozen_clock, scripted, submit, tenant):
    delivered = submit("+15550100001")
    cancelled = submit("+15550100002")
    intent_cancel(tenant=tenant, public_id=cancelled.public_id)
    run_once()
    statuses = dict(Intent.objects.values_list("pk", "status"))
    assert statuses == {delivered.pk: IntentStatus.ACCEPTED, cancelled.pk: IntentStatus.CANCELLED}
    assert not DeadLetter.objects.exists()


def test_many_failures_in_one_batch_each_get_exactly_one(frozen_clock, scripted, submit):
    failed = [submit(REJECTED) for _ in range(3)]
    run_once()
    assert sorted(DeadLetter.objects.values_list("intent_id", flat=True)) == sorted(
        i.pk for i in failed
    )


def test_announcing_the_same_failure_twice_adds_nothing(frozen_clock, dead_lettered):
    intent = dead_lettered(REJECTED)
    intents_dead_lettered.send(sender=Intent, intents=[intent], now=frozen_clock.now)
    assert DeadLetter.objects.filter(intent=intent).count() == 1


def test_dead_letter_rolls_back_with_the_engine_transaction(frozen_clock, scripted, submit):
    """The rows are written inside the engine's recording transaction, not after it."""
    intent = submit(REJECTED)
    seen_inside: list[int] = []

    def fail_after_dead_letters(sender, *, intents, now, **kwargs):
        seen_inside.append(DeadLetter.objects.filter(intent=intents[0]).count())
        raise RuntimeError("crash after the dead letters were written")

    intents_dead_lettered.connect(fail_after_dead_letters, sender=Intent, dispatch_uid="crash")
    try:
        with pytest.raises(RuntimeError, match="crash after"):
            run_once()
    finally:
        intents_dead_lettered.disconnect(sender=Intent, dispatch_uid="crash")
    assert seen_inside == [1]  # the dead letter existed in the transaction...
    intent.refresh_from_db()
    # ... and rolled back with the intent's new state and its attempt.
    assert intent.status == IntentStatus.IN_FLIGHT
    assert intent.attempt_rows.count() == 0
    assert not DeadLetter.objects.exists()


def test_sweeper_exhausting_lost_leases_makes_one_dead_letter(frozen_clock, scripted, submit):
    """A worker that vanishes three times: the sweeper's ``lease_lost`` spends the budget."""
    from intents.dispatch import claim_batch
    from intents.execution import sweep_expired_leases

    intent = submit()
    for _ in range(3):
        batch = claim_batch(
            tenant_ids=[intent.tenant_id], batch_size=10, worker_id="gone", lease_margin_s=1
        )
        assert batch is not None and batch.intent_ids == [intent.pk]
        frozen_clock.advance(5)  # past the lease (2 s timeout + 1 s margin)
        assert sweep_expired_leases() == 1
        frozen_clock.advance(1)
    intent.refresh_from_db()
    assert intent.status == IntentStatus.EXHAUSTED
    assert scripted.calls == []
    assert list(DeadLetter.objects.values_list("intent_id", "reason_code", "status")) == [
        (intent.pk, ReasonCode.ATTEMPTS_EXHAUSTED, DeadLetterStatus.OPEN)
    ]


def test_every_dead_letter_status_is_either_settled_or_unsettled():
    from deadletters.models import SETTLED_STATUSES, UNSETTLED_STATUSES

    assert set(SETTLED_STATUSES) | set(UNSETTLED_STATUSES) == set(DeadLetterStatus)
    assert not set(SETTLED_STATUSES) & set(UNSETTLED_STATUSES)
