"""The intent lifecycle driven through the dispatcher, with the clock under test control."""

from __future__ import annotations

import pytest

from intents.dispatch import run_once
from intents.models import Attempt, AttemptOutcome, Intent, IntentStatus, ReasonCode

pytestmark = pytest.mark.django_db


def reload(intent: Intent) -> Intent:
    intent.refresh_from_db()
    return intent


def outcomes(intent: Intent) -> list[str]:
    return list(Attempt.objects.filter(intent=intent).values_list("outcome", flat=True))


def test_accepted_on_first_attempt(frozen_clock, scripted, submit):
    intent = submit()
    assert run_once() == 1
    intent = reload(intent)
    assert intent.status == IntentStatus.ACCEPTED
    assert intent.reason_code == ReasonCode.GATEWAY_ACCEPTED
    assert intent.gateway_message_id.startswith("msg-")
    assert intent.attempts_count == 1
    assert intent.finished_at == frozen_clock.now
    assert outcomes(intent) == [AttemptOutcome.ACCEPTED]
    # The intent id is the gateway idempotency key, on every attempt.
    assert scripted.calls[0].idempotency_key == str(intent.public_id)


def test_permanent_rejection_fails_and_dead_letters(frozen_clock, scripted, submit):
    intent = submit("+15550100400")
    run_once()
    intent = reload(intent)
    assert intent.status == IntentStatus.FAILED
    assert intent.reason_code == ReasonCode.GATEWAY_REJECTED
    assert intent.dead_letters.get().reason_code == ReasonCode.GATEWAY_REJECTED


def test_transient_failures_retry_on_schedule_then_exhaust(frozen_clock, scripted, submit):
    intent = submit("+15550100503")  # sms.fast: fixed 1 s delay, 3 attempts
    run_once()
    intent = reload(intent)
    assert intent.status == IntentStatus.PENDING
    assert (intent.next_attempt_at - frozen_clock.now).total_seconds() == 1
    assert run_once() == 0  # not due yet: nothing is attempted early
    frozen_clock.advance(1)
    run_once()
    frozen_clock.advance(1)
    run_once()
    intent = reload(intent)
    assert intent.status == IntentStatus.EXHAUSTED
    assert intent.reason_code == ReasonCode.ATTEMPTS_EXHAUSTED
    assert outcomes(intent) == [AttemptOutcome.REJECTED_TRANSIENT] * 3
    assert intent.dead_letters.count() == 1


def test_first_requests_fail_then_accepted(frozen_clock, scripted, submit):
    intent = submit("+15550100202")  # 503 twice, then accepted
    for _ in range(3):
        run_once()
        frozen_clock.advance(1)
    intent = reload(intent)
    assert intent.status == IntentStatus.ACCEPTED
    assert outcomes(intent) == ["rejected_transient", "rejected_transient", "accepted"]
    assert {c.idempotency_key for c in scripted.calls} == {str(intent.public_id)}


def test_timeout_is_its_own_outcome(frozen_clock, scripted, submit):
    intent = submit("+15550100504")
    run_once()
    assert outcomes(reload(intent)) == [AttemptOutcome.TIMEOUT]


def test_adapter_crash_is_an_executor_error_not_a_gateway_outcome(frozen_clock, scripted, submit):
    intent = submit("+15550100666")
    run_once()
    attempt = Attempt.objects.get(intent=intent)
    assert attempt.outcome == AttemptOutcome.EXECUTOR_ERROR
    assert "adapter bug" in attempt.error
    assert reload(intent).status == IntentStatus.PENDING


def test_retry_after_is_honoured_within_the_policy_cap(frozen_clock, scripted, submit):
    # sms.otp: max_delay_s 60; the scripted 429 asks for 30 s.
    intent = submit("+15550100429", target="sms.otp")
    run_once()
    intent = reload(intent)
    wait = (intent.next_attempt_at - frozen_clock.now).total_seconds()
    assert 30 <= wait <= 60


def test_retry_after_beyond_the_cap_waits_exactly_the_policy_max_delay(
    frozen_clock, scripted, submit
):
    # sms.otp: max_delay_s 60; the scripted 429 asks for an hour.
    intent = submit("+15550103600", target="sms.otp")
    run_once()
    intent = reload(intent)
    assert intent.status == IntentStatus.PENDING
    assert (intent.next_attempt_at - frozen_clock.now).total_seconds() == 60


def test_attempt_timeout_is_capped_by_the_time_left_before_the_deadline(
    frozen_clock, scripted, submit
):
    from tests.engine import scripted_gateway

    intent = submit(target="sms.otp", deadline_seconds=2)  # attempt_timeout_s is 5
    assert reload(intent).attempt_timeout_s > 2
    run_once()
    assert scripted_gateway.timeouts == [pytest.approx(2.0, abs=0.01)]


def test_reopen_clears_a_cancel_request_left_by_the_previous_generation(
    frozen_clock, scripted, submit
):
    from intents.services import intent_reopen

    intent = submit("+15550100400")
    Intent.objects.filter(pk=intent.pk).update(
        status=IntentStatus.FAILED, finished_at=frozen_clock.now, cancel_requested=True
    )
    intent_reopen(intent=reload(intent))
    reopened = reload(intent)
    assert reopened.status == IntentStatus.PENDING
    assert reopened.cancel_requested is False
    assert reopened.generation == 2


def test_no_attempt_is_scheduled_past_the_deadline(frozen_clock, scripted, submit):
    intent = submit("+15550100503", deadline_seconds=1.5)
    run_once()  # next attempt would be at +1 s: still inside
    frozen_clock.advance(1)
    run_once()  # next would be at +2 s, past the 1.5 s deadline
    intent = reload(intent)
    assert intent.status == IntentStatus.EXPIRED
    assert intent.reason_code == ReasonCode.DEADLINE_PASSED
    assert intent.attempts_count == 2


def test_intent_found_past_its_deadline_expires_without_an_attempt(frozen_clock, scripted, submit):
    intent = submit(deadline_seconds=5)
    frozen_clock.advance(10)  # the dispatcher was down meanwhile
    run_once()
    intent = reload(intent)
    assert intent.status == IntentStatus.EXPIRED
    assert outcomes(intent) == []
    assert scripted.calls == []


def test_cancel_pending_is_immediate(frozen_clock, scripted, submit, tenant):
    from intents.services import intent_cancel

    intent = submit()
    intent = intent_cancel(tenant=tenant, public_id=intent.public_id)
    assert intent.status == IntentStatus.CANCELLED
    assert intent.reason_code == ReasonCode.CANCELLED_BY_CLIENT
    assert run_once() == 0
    assert scripted.calls == []


def test_cancel_terminal_is_refused(frozen_clock, scripted, submit, tenant):
    from intents.errors import AlreadyTerminal
    from intents.services import intent_cancel

    intent = submit()
    run_once()
    with pytest.raises(AlreadyTerminal):
        intent_cancel(tenant=tenant, public_id=intent.public_id)


def _claim_only(worker="w1"):
    from django.conf import settings

    from intents.dispatch import claim_batch
    from portal.accounts.models import Tenant

    return claim_batch(
        tenant_ids=list(Tenant.objects.values_list("id", flat=True)),
        batch_size=100,
        worker_id=worker,
        lease_margin_s=settings.LEASE_MARGIN_S,
    )


def test_cancel_loses_the_race_to_an_accepted_attempt(frozen_clock, scripted, submit, tenant):
    from intents.execution import execute_batch
    from intents.services import intent_cancel

    intent = submit()
    batch = _claim_only()
    assert reload(intent).status == IntentStatus.IN_FLIGHT
    in_flight = intent_cancel(tenant=tenant, public_id=intent.public_id)
    assert in_flight.status == IntentStatus.IN_FLIGHT and in_flight.cancel_requested
    # The claimed attempt already went out; pretend the cancel arrived during the call.
    Intent.objects.filter(pk=intent.pk).update(cancel_requested=False)
    from intents import execution

    original = execution.record_outcomes

    def cancel_during_call(**kwargs):
        Intent.objects.filter(pk=intent.pk).update(cancel_requested=True)
        return original(**kwargs)

    execution.record_outcomes = cancel_during_call
    try:
        execute_batch(lease_token=batch.lease_token, intent_ids=batch.intent_ids)
    finally:
        execution.record_outcomes = original
    intent = reload(intent)
    assert intent.status == IntentStatus.ACCEPTED
    assert intent.cancel_requested is True  # the API shows the cancel lost the race


def test_cancel_requested_in_flight_stops_retries(frozen_clock, scripted, submit, tenant):
    from intents.execution import execute_batch
    from intents.services import intent_cancel

    intent = submit("+15550100503")
    batch = _claim_only()
    intent_cancel(tenant=tenant, public_id=intent.public_id)
    execute_batch(lease_token=batch.lease_token, intent_ids=batch.intent_ids)
    intent = reload(intent)
    assert intent.status == IntentStatus.CANCELLED
    assert scripted.calls == []  # cancelled before the call was made


def test_expired_lease_is_reclaimed_as_lease_lost_and_retried(frozen_clock, scripted, submit):
    from intents.execution import execute_batch, sweep_expired_leases

    intent = submit()
    batch = _claim_only()  # ... and the worker dies here, before recording anything
    assert sweep_expired_leases() == 0  # lease still valid
    frozen_clock.advance(2 + 30 + 1)  # attempt timeout + lease margin, and a bit
    assert sweep_expired_leases() == 1
    intent = reload(intent)
    assert intent.status == IntentStatus.PENDING
    assert outcomes(intent) == [AttemptOutcome.LEASE_LOST]
    # The dead worker's late answer, should it come, is ignored.
    execute_batch(lease_token=batch.lease_token, intent_ids=batch.intent_ids)
    assert reload(intent).attempts_count == 1
    frozen_clock.advance(1)
    run_once()
    intent = reload(intent)
    assert intent.status == IntentStatus.ACCEPTED
    assert outcomes(intent) == [AttemptOutcome.LEASE_LOST, AttemptOutcome.ACCEPTED]


def test_a_huge_backlog_does_not_starve_another_tenant(
    frozen_clock, scripted, submit, clone_intents, other_tenant
):
    clone_intents(submit(), 1000)
    frozen_clock.advance(1)
    lonely = submit(tenant_=other_tenant, key="lonely")  # due later than all 1,001 others
    batch = _claim_only()
    assert len(batch.intent_ids) == 100
    assert lonely.id in batch.intent_ids
