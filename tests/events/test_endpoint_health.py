"""Rotation, 410, the disable-after window and the SSRF guard, through a real receiver
whose requests the ``standardwebhooks`` package verifies."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from deadletters.models import DeadLetter
from intents.dispatch import run_once
from intents.models import Attempt, Intent, IntentStatus
from portal.audit.models import AuditEvent
from portal.events.models import WebhookEndpoint, WebhookEvent

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)


def endpoint_row(endpoint: dict) -> WebhookEndpoint:
    return WebhookEndpoint.objects.get(public_id=endpoint["id"])


def test_rotation_signs_with_both_secrets_for_24_hours(
    frozen_clock, scripted, submit, make_endpoint, hooks_api, receiver
):
    endpoint = make_endpoint()
    old = endpoint["secret"]
    with time_machine.travel(START, tick=False) as traveller:
        response = hooks_api.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/rotate-secret")
        assert response.status_code == 200
        new = json.loads(response.content)["secret"]
        assert new.startswith("whsec_") and new != old
        submit()
        run_once()
        [during] = receiver.received
        assert len(during.headers["webhook-signature"].split()) == 2
        Webhook(new).verify(during.body, during.headers)
        Webhook(old).verify(during.body, during.headers)  # receivers not yet switched

        traveller.shift(dt.timedelta(hours=24, seconds=1))
        frozen_clock.advance(24 * 3600 + 1)
        submit()
        run_once()
        after = receiver.received[1]
        assert len(after.headers["webhook-signature"].split()) == 1
        Webhook(new).verify(after.body, after.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(after.body, after.headers)


def test_410_disables_the_endpoint(frozen_clock, scripted, submit, make_endpoint, receiver):
    endpoint = make_endpoint()
    receiver.default = 410
    submit()
    run_once()
    row = endpoint_row(endpoint)
    assert row.status == "disabled" and row.disabled_reason == "gone"
    assert row.disabled_at == frozen_clock.now
    audit = AuditEvent.objects.get(action="webhook_endpoint.disabled")
    assert audit.data["reason"] == "gone"
    # The delivery failed for good: a dead letter an operator can replay.
    delivery = Intent.objects.get(public_id=WebhookEvent.objects.get().public_id)
    assert delivery.status == IntentStatus.FAILED
    assert DeadLetter.objects.filter(intent=delivery).exists()
    # Disabled: the next change writes no event for it.
    submit()
    run_once()
    assert WebhookEvent.objects.count() == 1


def test_failing_every_attempt_for_the_window_disables(
    frozen_clock, scripted, submit, make_endpoint, receiver, settings
):
    settings.WEBHOOK_DISABLE_AFTER_S = 3600
    endpoint = make_endpoint()
    receiver.default = 503
    submit()
    run_once()  # fails: the streak starts
    assert endpoint_row(endpoint).failing_since == frozen_clock.now
    frozen_clock.advance(1800)
    submit()
    run_once()
    assert endpoint_row(endpoint).status == "enabled"  # half the window: still on
    frozen_clock.advance(1800)
    run_once()  # both events' retries are due and fail again: the window has passed
    row = endpoint_row(endpoint)
    assert row.status == "disabled" and row.disabled_reason == "failing"
    assert AuditEvent.objects.filter(action="webhook_endpoint.disabled").count() == 1


def test_a_success_ends_the_failure_streak(frozen_clock, scripted, submit, make_endpoint, receiver):
    endpoint = make_endpoint()
    receiver.script = [503]
    submit()
    run_once()
    assert endpoint_row(endpoint).failing_since is not None
    frozen_clock.advance(5)
    run_once()
    row = endpoint_row(endpoint)
    assert row.failing_since is None and row.last_success_at is not None


def test_private_addresses_are_refused_at_send_time(
    frozen_clock, scripted, submit, make_endpoint, receiver, settings
):
    make_endpoint()
    settings.WEBHOOK_ALLOWED_CIDRS = []  # loopback is no longer allowed
    submit()
    run_once()
    assert receiver.received == []
    attempt = Attempt.objects.get(connection__startswith="webhook-endpoint:")
    assert attempt.outcome == "rejected_permanent"
    assert "loopback" in attempt.error
    assert Intent.objects.get(internal=True).status == IntentStatus.FAILED


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("169.254.169.254", "link-local"),
        ("::1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("fe80::1", "link-local"),
        ("93.184.215.14", None),
    ],
)
def test_address_policy(address, refused):
    from gateways.providers.webhook import address_refusal

    reason = address_refusal(address, [])
    if refused is None:
        assert reason is None
    else:
        assert reason is not None and refused in reason
    assert address_refusal(address, ["0.0.0.0/0", "::/0"]) is None


def test_https_is_required_with_debug_off(
    frozen_clock, scripted, submit, make_endpoint, receiver, settings
):
    make_endpoint()
    settings.DEBUG = False  # an http endpoint left from a DEBUG run is not called
    submit()
    run_once()
    assert receiver.received == []
    assert "https" in Attempt.objects.get(connection__startswith="webhook-endpoint:").error


def test_a_disabled_endpoints_deliveries_wait_and_go_out_once_enabled(
    frozen_clock, scripted, submit, make_endpoint, receiver, hooks_api
):
    endpoint = make_endpoint()
    submit()
    run_once(max_batches=1)  # accepted: its event is due, not yet sent
    path = f"/api/v1/webhook-endpoints/{endpoint['id']}"
    hooks_api.request(
        "PATCH", path, data=json.dumps({"status": "disabled"}), content_type="application/json"
    )
    run_once()
    assert receiver.received == []
    delivery = Intent.objects.get(internal=True)
    assert delivery.status == IntentStatus.PENDING  # charged, not sent: it waits
    hooks_api.request(
        "PATCH", path, data=json.dumps({"status": "enabled"}), content_type="application/json"
    )
    frozen_clock.advance(5)
    run_once()
    assert len(receiver.received) == 1
    delivery.refresh_from_db()
    assert delivery.status == IntentStatus.ACCEPTED
