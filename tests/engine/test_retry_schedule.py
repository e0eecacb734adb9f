"""Property tests of the retry schedule: monotone to the cap, jitter in bounds, deadline kept."""

from __future__ import annotations

import datetime as dt
import random

from hypothesis import given
from hypothesis import strategies as st

from intents.models import AttemptOutcome, IntentStatus
from intents.retry import RetryPolicy, decide_after_attempt

policies = st.builds(
    RetryPolicy,
    strategy=st.sampled_from(["fixed", "exponential", "exponential_jitter"]),
    initial_delay_s=st.floats(0, 100),
    multiplier=st.floats(1, 10),
    max_delay_s=st.floats(100, 10_000),
    max_attempts=st.integers(1, 100),
)
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@given(policies, st.integers(1, 200))
def test_ceiling_is_monotone_and_capped(policy, attempts):
    assert policy.ceiling_after(attempts) <= policy.ceiling_after(attempts + 1)
    assert policy.ceiling_after(attempts) <= policy.max_delay_s


@given(policies, st.integers(1, 200), st.integers(0, 2**32))
def test_jitter_stays_inside_zero_and_the_ceiling(policy, attempts, seed):
    delay = policy.delay_after(attempts, rng=random.Random(seed))
    assert 0 <= delay <= policy.ceiling_after(attempts)
    if policy.strategy != "exponential_jitter":
        assert delay == policy.ceiling_after(attempts)


@given(policies, st.integers(1, 50), st.floats(0, 100_000))
def test_retry_after_is_a_floor_capped_by_max_delay(policy, attempts, retry_after):
    delay = policy.delay_after(attempts, retry_after_s=retry_after, rng=random.Random(1))
    assert delay >= min(retry_after, policy.max_delay_s)
    assert delay <= max(policy.max_delay_s, policy.ceiling_after(attempts))


@given(
    policies,
    st.integers(1, 100),
    st.floats(0.001, 100_000),
    st.sampled_from(
        [
            AttemptOutcome.REJECTED_TRANSIENT,
            AttemptOutcome.TIMEOUT,
            AttemptOutcome.EXECUTOR_ERROR,
            AttemptOutcome.LEASE_LOST,
        ]
    ),
    st.none() | st.floats(0, 1000),
    st.integers(0, 2**32),
)
def test_never_scheduled_past_the_deadline(
    policy, attempts, deadline_s, outcome, retry_after, seed
):
    deadline = NOW + dt.timedelta(seconds=deadline_s)
    decision = decide_after_attempt(
        outcome=outcome,
        attempts_made=attempts,
        max_attempts=policy.max_attempts,
        cancel_requested=False,
        now=NOW,
        deadline_at=deadline,
        policy=policy,
        retry_after_s=retry_after,
        rng=random.Random(seed),
    )
    if decision.status == IntentStatus.PENDING:
        assert decision.next_attempt_at is not None
        assert NOW <= decision.next_attempt_at < deadline
        assert attempts < policy.max_attempts
    else:
        assert decision.status in (IntentStatus.EXPIRED, IntentStatus.EXHAUSTED)
        assert decision.next_attempt_at is None


def test_exponential_schedule_example():
    policy = RetryPolicy("exponential", 1, 2, 60, 10)
    assert [policy.delay_after(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_accepted_wins_over_a_cancel_request():
    decision = decide_after_attempt(
        outcome=AttemptOutcome.ACCEPTED,
        attempts_made=1,
        max_attempts=3,
        cancel_requested=True,
        now=NOW,
        deadline_at=NOW + dt.timedelta(seconds=60),
        policy=RetryPolicy("fixed", 1, 1, 1, 3),
    )
    assert decision.status == IntentStatus.ACCEPTED
