"""Recording a batch's outcomes: every intent's new state and attempt, in fixed queries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from intents.dispatch import claim_batch
from intents.execution import execute_batch
from intents.models import Attempt, AttemptOutcome, Intent, IntentStatus, ReasonCode

pytestmark = pytest.mark.django_db

ACCEPTED, TRANSIENT, PERMANENT = "+15550100001", "+15550100503", "+15550100400"


def run_batch(tenant, per_outcome: int) -> int:
    """Claim and execute one batch; returns how many statements the execution sent."""
    return run_batch_of(tenant, 3 * per_outcome)


def run_batch_of(tenant, size: int) -> int:
    batch = claim_batch(tenant_ids=[tenant.id], batch_size=size, worker_id="w", lease_margin_s=30)
    assert batch is not None
    with CaptureQueriesContext(connection) as captured:
        assert execute_batch(lease_token=batch.lease_token, intent_ids=batch.intent_ids) == size
    return len(captured.captured_queries)


def test_each_intent_gets_its_new_state_and_one_attempt(frozen_clock, scripted, submit, tenant):
    accepted, transient, permanent = submit(ACCEPTED), submit(TRANSIENT), submit(PERMANENT)
    run_batch(tenant, 1)

    accepted, transient, permanent = (
        Intent.objects.get(pk=i.pk) for i in (accepted, transient, permanent)
    )
    assert (accepted.status, accepted.reason_code) == (
        IntentStatus.ACCEPTED,
        ReasonCode.GATEWAY_ACCEPTED,
    )
    assert accepted.gateway_message_id.startswith("msg-")
    assert accepted.finished_at == frozen_clock.now
    assert (transient.status, transient.reason_code, transient.finished_at) == (
        IntentStatus.PENDING,
        "",
        None,
    )
    assert (transient.next_attempt_at - frozen_clock.now).total_seconds() == 1
    assert (permanent.status, permanent.reason_code) == (
        IntentStatus.FAILED,
        ReasonCode.GATEWAY_REJECTED,
    )
    for intent in (accepted, transient, permanent):
        assert intent.attempts_count == 1
        assert (intent.lease_owner, intent.lease_expires_at) == ("", None)
        assert intent.updated_at == frozen_clock.now
    assert sorted(Attempt.objects.values_list("outcome", flat=True)) == sorted(
        [
            AttemptOutcome.ACCEPTED,
            AttemptOutcome.REJECTED_TRANSIENT,
            AttemptOutcome.REJECTED_PERMANENT,
        ]
    )


def test_statements_do_not_grow_with_the_batch(frozen_clock, scripted, submit, tenant):
    """No per-intent query, whatever the outcomes (a retry leaves fields unwritten)."""
    submit(ACCEPTED)
    run_batch_of(tenant, 1)  # the connection's first batch creates its health row
    for to in (ACCEPTED, TRANSIENT, PERMANENT):
        submit(to)
    small = run_batch(tenant, 1)
    for _ in range(5):  # the clock stands still, so the first retry is not due yet
        for to in (ACCEPTED, TRANSIENT, PERMANENT):
            submit(to)
    large = run_batch(tenant, 5)
    assert large == small


def test_every_gateway_outcome_is_an_attempt_outcome_and_only_lease_lost_is_added():
    """Attempt rows store the gateway's outcome as it is: the choices cannot drift apart."""
    from gateways.base import Outcome

    assert {choice.value for choice in AttemptOutcome} - {o.value for o in Outcome} == {
        AttemptOutcome.LEASE_LOST
    }
    assert all(AttemptOutcome(outcome.value) for outcome in Outcome)
