"""The circuit breaker of each connection, shared by every worker through the database.

Closed: calls flow and are counted over a fixed window of ``window_s``; once the window
holds at least ``min_calls`` calls and failures reach ``failure_ratio`` of them, the
circuit opens. Open: no call is made until ``open_s`` has passed. Then one caller claims
the single half-open probe (a conditional UPDATE, so two workers cannot both probe);
its success closes the circuit, its failure opens it again. A probe whose worker never
reports is released after ``PROBE_HOLD_S`` for another to try.

What counts: the provider answering (accepted or a permanent rejection) is a success; a
transient rejection or a timeout is a failure. An executor error is our own fault and
says nothing about the provider, so it is not counted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.db.models import F, Q

from .base import RESULT_ERROR_CHARS, Outcome
from .connections import CircuitPolicy
from .models import CircuitState, ConnectionHealth

FAILURES = frozenset({Outcome.REJECTED_TRANSIENT, Outcome.TIMEOUT})
SUCCESSES = frozenset({Outcome.ACCEPTED, Outcome.REJECTED_PERMANENT})
# How long one half-open probe may stay unanswered before another worker may probe.
PROBE_HOLD_S = 60.0
# While one caller probes, the others look again this soon.
HALF_OPEN_RECHECK_S = 1.0
STATE_VALUES = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}


class Admission(enum.Enum):
    CALL = "call"  # closed: call freely
    PROBE = "probe"  # half-open: this caller holds the one probe
    REFUSED = "refused"  # open (or another caller holds the probe)


@dataclasses.dataclass(frozen=True, slots=True)
class CircuitView:
    state: str
    open_until: dt.datetime | None
    probe_until: dt.datetime | None

    def admission(self, now: dt.datetime) -> Admission:
        """What a caller may do now, before claiming a probe."""
        if self.state == CircuitState.CLOSED:
            return Admission.CALL
        return Admission.PROBE if self.probe_due(now) else Admission.REFUSED

    def probe_due(self, now: dt.datetime) -> bool:
        if self.state == CircuitState.OPEN:
            return self.open_until is None or self.open_until <= now
        return self.probe_until is None or self.probe_until <= now

    def refused_until(self, now: dt.datetime) -> dt.datetime:
        """When a refused caller should look again: when the circuit may probe, or, while
        another caller's probe is out, soon (it usually settles within an attempt)."""
        soon = now + dt.timedelta(seconds=HALF_OPEN_RECHECK_S)
        if self.state == CircuitState.HALF_OPEN:
            return min(self.probe_until, soon) if self.probe_until else soon
        return self.open_until if self.open_until and self.open_until > now else soon


CLOSED = CircuitView(CircuitState.CLOSED, None, None)


def circuit_views(keys: Iterable[str]) -> dict[str, CircuitView]:
    """Each connection's circuit, in one query; a connection without a row is closed."""
    views = dict.fromkeys(keys, CLOSED)
    for row in ConnectionHealth.objects.filter(connection_key__in=list(views)).only(
        "connection_key", "state", "open_until", "probe_until"
    ):
        views[row.connection_key] = CircuitView(row.state, row.open_until, row.probe_until)
    return views


def circuit_claim_probe(*, key: str, now: dt.datetime) -> bool:
    """Claim the single half-open probe of an open circuit whose wait is over."""
    due = Q(state=CircuitState.OPEN, open_until__lte=now) | Q(
        state=CircuitState.HALF_OPEN, probe_until__lte=now
    )
    claimed = ConnectionHealth.objects.filter(due, connection_key=key).update(
        state=CircuitState.HALF_OPEN,
        probe_until=now + dt.timedelta(seconds=PROBE_HOLD_S),
        updated_at=now,
    )
    return claimed == 1


@dataclasses.dataclass(slots=True)
class ConnectionOutcomes:
    """What one batch saw on one connection, reported after the batch is recorded."""

    successes: int = 0
    failures: int = 0
    probe: bool = False  # this batch held the half-open probe
    throttle_waits: int = 0
    circuit_deferrals: int = 0
    last_outcome: str = ""
    last_failure: str = ""

    def add(self, outcome: Outcome, error: str) -> None:
        if outcome in FAILURES:
            self.failures += 1
            self.last_failure = error[:RESULT_ERROR_CHARS]
        elif outcome in SUCCESSES:
            self.successes += 1
        self.last_outcome = outcome.value


def circuit_record(
    *, key: str, policy: CircuitPolicy | None, outcomes: ConnectionOutcomes, now: dt.datetime
) -> str:
    """Count a batch's calls on ``key`` and move its circuit; returns the new state.

    Without a policy (the built-in simulator connections) only the totals are counted.
    """
    with transaction.atomic():
        health = _locked_health(key, now)
        calls = outcomes.successes + outcomes.failures
        if policy is not None and now - health.window_started_at >= dt.timedelta(
            seconds=policy.window_s
        ):
            health.window_started_at, health.window_calls, health.window_failures = now, 0, 0
        if policy is None:
            pass
        elif health.state == CircuitState.HALF_OPEN and outcomes.probe and calls:
            if outcomes.failures:
                _open(health, policy, now)
            else:
                health.state = CircuitState.CLOSED
                health.window_started_at, health.window_calls, health.window_failures = now, 0, 0
                health.opened_at = health.open_until = health.probe_until = None
        elif health.state == CircuitState.CLOSED:
            health.window_calls += calls
            health.window_failures += outcomes.failures
            if (
                health.window_calls >= policy.min_calls
                and health.window_failures >= policy.failure_ratio * health.window_calls
            ):
                _open(health, policy, now)
        # Answers to calls made before the circuit opened change nothing but the totals.
        health.total_calls = F("total_calls") + calls
        health.total_failures = F("total_failures") + outcomes.failures
        health.throttle_waits = F("throttle_waits") + outcomes.throttle_waits
        health.circuit_deferrals = F("circuit_deferrals") + outcomes.circuit_deferrals
        if outcomes.last_outcome:
            health.last_outcome, health.last_outcome_at = outcomes.last_outcome, now
        if outcomes.last_failure:
            health.last_failure = outcomes.last_failure
        health.updated_at = now
        health.save()
        return health.state


def _open(health: ConnectionHealth, policy: CircuitPolicy, now: dt.datetime) -> None:
    health.state = CircuitState.OPEN
    health.opened_at = now
    health.open_until = now + dt.timedelta(seconds=policy.open_s)
    health.probe_until = None


def _locked_health(key: str, now: dt.datetime) -> ConnectionHealth:
    row = ConnectionHealth.objects.select_for_update().filter(connection_key=key).first()
    if row is not None:
        return row
    try:
        with transaction.atomic():  # a savepoint: a concurrent first insert may win
            ConnectionHealth.objects.create(
                connection_key=key, window_started_at=now, updated_at=now
            )
    except IntegrityError:
        pass  # another worker created it first: theirs is as good as ours
    return ConnectionHealth.objects.select_for_update().get(connection_key=key)
