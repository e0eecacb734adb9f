"""Two evaluators at the same instant (two workers picking up the schedule): one episode,
one notification per destination. Needs real row locks: PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from portal import clock
from portal.escalation.models import Episode, Notification
from portal.escalation.services import escalations_evaluate

from .conftest import REJECTED

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres_only(reason="SQLite serialises every writer, so nothing races"),
]

BURST = """
[[rule]]
key = "dl-burst"
kind = "dead_letters.burst"
count = 2
window_minutes = 5
destinations = ["pd", "hook"]
"""


def evaluate_in_threads(count: int, now) -> list[BaseException]:
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            escalations_evaluate(now=now)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def test_two_evaluators_notify_once(registry, dead_letter, frozen_clock, receiver) -> None:
    registry(BURST)
    dead_letter(REJECTED)
    dead_letter(REJECTED)

    assert evaluate_in_threads(2, clock.now()) == []

    assert Episode.objects.count() == 1
    assert [b["event_action"] for b in receiver.bodies("/v2/enqueue")] == ["trigger"]
    assert len(receiver.bodies("/hook")) == 1

    frozen_clock.advance(6 * 60)
    assert evaluate_in_threads(2, clock.now()) == []

    assert [b["event_action"] for b in receiver.bodies("/v2/enqueue")] == ["trigger", "resolve"]
    assert len(receiver.bodies("/hook")) == 2
    assert Notification.objects.filter(status="sent").count() == 4
