"""The throttle and the circuit are shared: concurrent workers on one PostgreSQL server."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from gateways.base import Outcome
from gateways.circuit import ConnectionOutcomes, circuit_claim_probe, circuit_record
from gateways.connections import CircuitPolicy
from gateways.models import CircuitState, ConnectionHealth
from gateways.throttle import throttle_acquire

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres_only(reason="SQLite serialises every writer, so nothing races"),
]
NOW = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)
POLICY = CircuitPolicy(failure_ratio=0.5, min_calls=20, window_s=60, open_s=30)


def in_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads released together; each has its own connection."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    return results


def test_a_rate_holds_across_concurrent_workers() -> None:
    # Four workers each want ten calls at the same instant on a 5/s connection.
    grants = in_threads(4, lambda _: throttle_acquire(key="c", rate=5, wanted=10, now=NOW))
    assert sum(g.granted for g in grants) == 5
    later = in_threads(
        4,
        lambda _: throttle_acquire(key="c", rate=5, wanted=10, now=NOW + dt.timedelta(seconds=1)),
    )
    assert sum(g.granted for g in later) == 5


def test_failures_from_concurrent_workers_add_up_and_open_the_circuit() -> None:
    def report(_: int) -> str:
        outcomes = ConnectionOutcomes()
        for _ in range(5):
            outcomes.add(Outcome.TIMEOUT, "no answer")
        return circuit_record(key="c", policy=POLICY, outcomes=outcomes, now=NOW)

    states = in_threads(4, report)
    health = ConnectionHealth.objects.get(connection_key="c")
    assert (health.window_calls, health.total_failures) == (20, 20)
    assert health.state == CircuitState.OPEN
    assert states.count(CircuitState.OPEN) == 1  # the fourth report opened it


def test_only_one_worker_gets_the_half_open_probe() -> None:
    ConnectionHealth.objects.create(
        connection_key="c",
        state=CircuitState.OPEN,
        window_started_at=NOW,
        open_until=NOW,
        updated_at=NOW,
    )
    claims = in_threads(6, lambda _: circuit_claim_probe(key="c", now=NOW))
    assert claims.count(True) == 1
    assert ConnectionHealth.objects.get(connection_key="c").state == CircuitState.HALF_OPEN
