"""A burst of dead letters pages PagerDuty once and resolves once (Events API v2)."""

from __future__ import annotations

import datetime as dt

import pytest

from portal.audit.models import AuditEvent
from portal.escalation.models import Episode, Notification
from portal.escalation.tasks import evaluate_escalations

from .conftest import REJECTED, ROUTING_KEY

BURST = """
[[rule]]
key = "dl-burst"
kind = "dead_letters.burst"
severity = "critical"
count = 3
window_minutes = 5
destinations = ["pd", "chat"]
"""


@pytest.fixture
def burst(registry, dead_letter, frozen_clock):
    registry(BURST)
    for _ in range(3):
        dead_letter(REJECTED)
    return frozen_clock


def test_a_burst_triggers_one_pagerduty_event_and_one_resolve(burst, receiver) -> None:
    opened_at = burst.now

    evaluate_escalations()
    evaluate_escalations()  # still breached: nothing new

    (trigger,) = receiver.bodies("/v2/enqueue")
    episode = Episode.objects.get()
    assert trigger == {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": episode.dedup_key,
        "payload": {
            "summary": "3 dead letters opened in 5 min for target sms.fast",
            "source": "submission-portal",
            "severity": "critical",
            "timestamp": opened_at.isoformat().replace("+00:00", "Z"),
            "component": "target:sms.fast",
            "group": "dl-burst",
            "class": "dead_letters.burst",
            "custom_details": {
                "opened": 3,
                "window_minutes": 5.0,
                "target": "sms.fast",
                "rule": "dl-burst",
                "subject": "target:sms.fast",
            },
        },
    }

    burst.advance(6 * 60)  # the window slides past the burst
    report = evaluate_escalations()
    evaluate_escalations()

    assert report["resolved"] == 1
    _, resolved = receiver.bodies("/v2/enqueue")
    assert resolved == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": episode.dedup_key,
    }
    episode.refresh_from_db()
    assert episode.status == "resolved"
    assert episode.resolved_at == opened_at + dt.timedelta(minutes=6)
    actions = list(
        AuditEvent.objects.filter(object_type="escalation_episode")
        .order_by("sequence")
        .values_list("action", "data__destination")
    )
    assert actions == [
        ("escalation.triggered", "pd"),
        ("escalation.triggered", "chat"),
        ("escalation.resolved", "pd"),
        ("escalation.resolved", "chat"),
    ]


def test_slack_gets_one_line_per_notification(burst, receiver) -> None:
    evaluate_escalations()
    burst.advance(6 * 60)
    evaluate_escalations()

    assert receiver.bodies("/slack") == [
        {
            "text": "[CRITICAL] 3 dead letters opened in 5 min for target sms.fast "
            "(submission-portal)"
        },
        {
            "text": "[RESOLVED] 3 dead letters opened in 5 min for target sms.fast "
            "(submission-portal)"
        },
    ]


def test_a_failed_send_is_retried_without_a_second_episode(burst, receiver) -> None:
    receiver.statuses = [503, 503]  # PagerDuty, then Slack, refuse the first try

    first = evaluate_escalations()
    second = evaluate_escalations()

    assert (first["opened"], first["sent"], first["failed"]) == (1, 0, 2)
    assert (second["opened"], second["sent"], second["failed"]) == (0, 2, 0)
    assert Episode.objects.count() == 1
    triggers = receiver.bodies("/v2/enqueue")
    assert [b["event_action"] for b in triggers] == ["trigger", "trigger"]
    assert triggers[0]["dedup_key"] == triggers[1]["dedup_key"]
    assert set(Notification.objects.values_list("status", "attempts")) == {("sent", 2)}
    assert AuditEvent.objects.filter(action="escalation.triggered").count() == 2


def test_below_the_threshold_nothing_is_sent(registry, dead_letter, frozen_clock, receiver):
    registry(BURST)
    dead_letter(REJECTED)
    dead_letter(REJECTED)

    assert evaluate_escalations()["opened"] == 0
    assert receiver.requests == []


def test_per_tenant_counts_every_target_of_the_tenant(
    registry, dead_letter, frozen_clock, receiver
) -> None:
    registry(BURST.replace("window_minutes = 5", 'window_minutes = 5\nper = "tenant"'))
    for _ in range(3):
        dead_letter(REJECTED)

    evaluate_escalations()

    assert Episode.objects.get().subject == "tenant:acme"
