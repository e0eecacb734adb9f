"""Retry policies and the decision taken after every attempt.

Pure functions of their inputs (the random source is passed in), so the schedule can
be property-tested and the engine, the sweeper and the tests share one rulebook.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from typing import Any

from .models import AttemptOutcome, IntentStatus, ReasonCode

STRATEGIES = ("fixed", "exponential", "exponential_jitter")
RETRYABLE_OUTCOMES = (
    AttemptOutcome.REJECTED_TRANSIENT,
    AttemptOutcome.TIMEOUT,
    AttemptOutcome.EXECUTOR_ERROR,
    AttemptOutcome.LEASE_LOST,
)


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    strategy: str
    initial_delay_s: float
    multiplier: float
    max_delay_s: float
    max_attempts: int

    @classmethod
    def from_contract(cls, retry: dict[str, Any]) -> RetryPolicy:
        return cls(
            strategy=retry["strategy"],
            initial_delay_s=float(retry["initial_delay_s"]),
            multiplier=float(retry["multiplier"]),
            max_delay_s=float(retry["max_delay_s"]),
            max_attempts=int(retry["max_attempts"]),
        )

    def ceiling_after(self, attempts_made: int) -> float:
        """The delay before the next attempt, before jitter: monotone, capped."""
        if self.strategy == "fixed":
            return min(self.initial_delay_s, self.max_delay_s)
        exponent = max(attempts_made - 1, 0)
        # Cap the exponent's growth before it overflows a float.
        try:
            grown = self.initial_delay_s * (self.multiplier**exponent)
        except OverflowError:
            grown = self.max_delay_s
        return min(grown, self.max_delay_s)

    def delay_after(
        self,
        attempts_made: int,
        *,
        retry_after_s: float | None = None,
        rng: random.Random | None = None,
    ) -> float:
        """Seconds to wait after ``attempts_made`` attempts.

        Full jitter draws uniformly from [0, ceiling]. A gateway's ``Retry-After`` is a
        floor, honoured up to ``max_delay_s`` so a gateway cannot park an intent forever.
        """
        delay = self.ceiling_after(attempts_made)
        if self.strategy == "exponential_jitter":
            delay = (rng or random).uniform(0.0, delay)
        if retry_after_s is not None and retry_after_s > 0:
            delay = max(delay, min(retry_after_s, self.max_delay_s))
        return delay


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    status: str
    reason_code: str = ""
    next_attempt_at: dt.datetime | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status not in (IntentStatus.PENDING, IntentStatus.IN_FLIGHT)


def decide_after_attempt(
    *,
    outcome: str,
    attempts_made: int,
    max_attempts: int,
    cancel_requested: bool,
    now: dt.datetime,
    deadline_at: dt.datetime,
    policy: RetryPolicy,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> Decision:
    """The intent's next state once an attempt has ended with ``outcome``."""
    if outcome == AttemptOutcome.ACCEPTED:
        # A cancel that arrives while the gateway accepts loses the race.
        return Decision(IntentStatus.ACCEPTED, ReasonCode.GATEWAY_ACCEPTED)
    if outcome == AttemptOutcome.REJECTED_PERMANENT:
        return Decision(IntentStatus.FAILED, ReasonCode.GATEWAY_REJECTED)
    if cancel_requested:
        return Decision(IntentStatus.CANCELLED, ReasonCode.CANCELLED_BY_CLIENT)
    if attempts_made >= max_attempts:
        return Decision(IntentStatus.EXHAUSTED, ReasonCode.ATTEMPTS_EXHAUSTED)
    delay = policy.delay_after(attempts_made, retry_after_s=retry_after_s, rng=rng)
    next_at = now + dt.timedelta(seconds=delay)
    if next_at >= deadline_at:
        return Decision(IntentStatus.EXPIRED, ReasonCode.DEADLINE_PASSED)
    return Decision(IntentStatus.PENDING, "", next_at)
