"""A notification that can never be sent is marked undeliverable (and audited), not
retried forever."""

from __future__ import annotations

from portal.audit.models import AuditEvent
from portal.escalation.models import Notification
from portal.escalation.tasks import evaluate_escalations

from .conftest import REJECTED

BURST = """
[[rule]]
key = "dl-burst"
kind = "dead_letters.burst"
count = 1
window_minutes = 5
destinations = ["hook"]
"""


def test_a_permanent_refusal_is_not_retried(registry, dead_letter, frozen_clock, receiver):
    registry(BURST)
    receiver.statuses = [400]
    dead_letter(REJECTED)

    first = evaluate_escalations()
    second = evaluate_escalations()

    assert (first["undeliverable"], second["undeliverable"], second["sent"]) == (1, 0, 0)
    assert len(receiver.requests) == 1
    notification = Notification.objects.get()
    assert (notification.status, notification.attempts) == ("undeliverable", 1)
    event = AuditEvent.objects.get(action="escalation.undeliverable")
    assert event.data["destination"] == "hook"
    assert "400" in event.data["error"]


def test_a_retired_connection_gets_no_resolve(
    registry, dead_letter, frozen_clock, receiver, tmp_path
) -> None:
    registry(BURST)
    dead_letter(REJECTED)
    evaluate_escalations()

    (tmp_path / "connections" / "hook.toml").unlink()
    registry("")  # rule and connection retired together
    report = evaluate_escalations()

    assert report["resolved"] == 1
    assert report["undeliverable"] == 1
    assert len(receiver.requests) == 1  # the trigger only
    resolve = Notification.objects.get(action="resolve")
    assert resolve.last_error == "connection is not an active ops destination"
