"""The simulator's signed receipts: scheduled after acceptance, verified by the portal.

The sender's clock, scheduler and HTTP post are injected: the test runs what was
scheduled when it chooses, posting through Django's test client. No sleeps."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from standardwebhooks import Webhook

from deadletters.models import DeadLetter
from gateways.simulator import GatewaySimulator, start_simulator_in_thread
from gateways.simulator.receipts import MAX_TRIES, ReceiptSender
from intents.models import Intent

pytestmark = pytest.mark.django_db
SECRET = "whsec_" + base64.b64encode(b"simulator-receipts-test-secret").decode()
NOW = dt.datetime(2026, 1, 5, 12, 0, 0, 250000, tzinfo=dt.UTC)


class Harness:
    def __init__(self, post=None) -> None:
        self.scheduled: list[tuple[float, object]] = []
        self.posted: list[tuple[str, dict, bytes]] = []
        self.answer: dict = {"received": 1}
        self.sender = ReceiptSender(
            url="http://portal.test/hooks/receipts/{connection}",
            secret=SECRET,
            delay_s=0.2,
            post=post or self.post,
            schedule=lambda delay, action: self.scheduled.append((delay, action)),
            now=lambda: dt.datetime.now(dt.UTC),
        )

    def post(self, url: str, headers: dict, body: bytes) -> dict:
        self.posted.append((url, headers, body))
        return self.answer

    def run_scheduled(self) -> None:
        pending, self.scheduled = self.scheduled, []
        for _, action in pending:
            action()  # type: ignore[operator]


def test_a_receipt_is_scheduled_after_the_delay_and_signed_to_the_spec() -> None:
    harness = Harness()
    harness.sender.on_accepted("/sms", "sim-1", "+15550100011")
    assert [delay for delay, _ in harness.scheduled] == [0.2]
    assert harness.posted == []
    harness.run_scheduled()
    [(url, headers, body)] = harness.posted
    assert url == "http://portal.test/hooks/receipts/simulator-sms"
    data = Webhook(SECRET).verify(body, headers)  # the reference verifier accepts it
    assert data["message_id"] == "sim-1" and data["status"] == "delivered"
    assert data["occurred_at"].endswith("Z")


def test_a_recipient_ending_00410_is_undelivered_with_a_permanent_code() -> None:
    harness = Harness()
    harness.sender.on_accepted("/sms", "sim-2", "+15550100410")
    harness.run_scheduled()
    data = json.loads(harness.posted[0][2])
    assert (data["status"], data["error_code"]) == ("undelivered", "unreachable")


def test_an_ignored_receipt_is_tried_again_a_few_times() -> None:
    harness = Harness()
    harness.answer = {"received": 1, "ignored": 1}
    harness.sender.on_accepted("/push", "sim-3", "device")
    for _ in range(MAX_TRIES + 2):
        harness.run_scheduled()
    assert len(harness.posted) == MAX_TRIES
    assert harness.posted[0][0].endswith("/simulator-push")


def test_a_bad_secret_is_refused_at_start() -> None:
    from gateways.providers.common import ProviderConfigError

    with pytest.raises(ProviderConfigError):
        ReceiptSender(url="http://x", secret="whsec_not base64!")


def test_simulator_to_portal_delivered_and_undelivered(client, settings, targets, tenant) -> None:
    """The whole path: the engine sends to a real simulator, which schedules a receipt;
    run, it reaches the hook and finishes each intent's delivery status."""

    def post(url: str, headers: dict, body: bytes) -> dict:
        path = url.removeprefix("http://portal.test")
        response = client.post(path, data=body, content_type="application/json", headers=headers)
        assert response.status_code == 202, response.content
        return response.json()

    harness = Harness(post=post)
    server, base_url = start_simulator_in_thread(
        simulator=GatewaySimulator(on_accepted=harness.sender.on_accepted)
    )
    try:
        settings.GATEWAY_SMS_URL = f"{base_url}/sms"
        settings.GATEWAY_SMS_STATUS_URL = f"{base_url}/sms/status"
        settings.GATEWAY_SIMULATOR_RECEIPT_SECRET = SECRET
        from intents.dispatch import claim_batch
        from intents.execution import execute_batch
        from intents.services import intent_submit

        intents = [
            intent_submit(
                tenant=tenant,
                idempotency_key=to,
                target_key="sms.otp",
                contract_version=None,
                payload={"to": to, "text": "123456"},
            ).intent
            for to in ("+15550100011", "+15550100410")
        ]
        batch = claim_batch(tenant_ids=[tenant.id], batch_size=10, worker_id="w", lease_margin_s=30)
        assert batch is not None
        execute_batch(lease_token=batch.lease_token, intent_ids=batch.intent_ids)
        assert len(harness.scheduled) == 2
        harness.run_scheduled()
    finally:
        server.stop()
    delivered, undelivered = (Intent.objects.get(pk=i.pk) for i in intents)
    assert (delivered.status, delivered.delivery_status) == ("accepted", "delivered")
    assert (undelivered.status, undelivered.delivery_status) == ("accepted", "undelivered")
    assert DeadLetter.objects.get().intent_id == undelivered.pk


def test_the_command_refuses_a_receipts_url_without_a_good_secret(settings) -> None:
    from django.core.management import CommandError, call_command

    settings.GATEWAY_SIMULATOR_RECEIPT_SECRET = ""
    with pytest.raises(CommandError, match="needs --receipts-secret"):
        call_command("run_gateway_simulator", receipts_url="http://127.0.0.1:1/hooks/x")
    with pytest.raises(CommandError, match="--receipts-secret"):
        call_command(
            "run_gateway_simulator",
            receipts_url="http://127.0.0.1:1/hooks/x",
            receipts_secret="whsec_***",
        )
