"""POST /hooks/receipts/{connection}: signed receipts from the simulator and webhook
connections, verified; signatures made by the ``standardwebhooks`` package itself."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging

import pytest
from standardwebhooks import Webhook

from deadletters.models import DeadLetter
from intents.models import Intent, Receipt
from tests.connections.conftest import folders  # noqa: F401 (fixtures)
from tests.gateways.conftest import simulator, simulator_settings  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db
SECRET = "whsec_" + base64.b64encode(b"receipts-test-secret-0123456789").decode()
WRONG = "whsec_" + base64.b64encode(b"someone-else-entirely-9876543210").decode()


@pytest.fixture
def sent(simulator_settings, targets, tenant):  # noqa: F811 (fixtures)
    """An SMS accepted by the real simulator through the built-in simulator-sms."""
    simulator_settings.GATEWAY_SIMULATOR_RECEIPT_SECRET = SECRET
    from intents.dispatch import claim_batch
    from intents.execution import execute_batch
    from intents.services import intent_submit

    counter = iter(range(1, 1000))

    def make(to: str = "+15550100001") -> Intent:
        intent = intent_submit(
            tenant=tenant,
            idempotency_key=f"r-{next(counter)}",
            target_key="sms.otp",
            contract_version=None,
            payload={"to": to, "text": "123456"},
        ).intent
        batch = claim_batch(tenant_ids=[tenant.id], batch_size=10, worker_id="w", lease_margin_s=30)
        assert batch is not None
        execute_batch(lease_token=batch.lease_token, intent_ids=batch.intent_ids)
        return Intent.objects.get(pk=intent.pk)

    return make


def post(client, body: dict, *, secret: str = SECRET, connection: str = "simulator-sms"):
    raw = json.dumps(body).encode()
    now = dt.datetime.now(tz=dt.UTC)
    msg_id = f"msg_{abs(hash(raw))}"
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, raw),
    }
    return client.post(
        f"/hooks/receipts/{connection}",
        data=raw,
        content_type="application/json",
        headers=headers,
    )


def body(intent: Intent, status: str, **extra) -> dict:
    return {
        "message_id": intent.gateway_message_id,
        "status": status,
        "occurred_at": "2099-01-01T00:00:00Z",
        **extra,
    }


def test_a_signed_delivered_receipt_is_applied(client, sent) -> None:
    intent = sent()
    assert intent.status == "accepted" and intent.delivery_status == "sent"
    response = post(client, body(intent, "delivered"))
    assert response.status_code == 202
    intent.refresh_from_db()
    assert intent.delivery_status == "delivered" and intent.delivered_at is not None
    row = Receipt.objects.get()
    assert row.occurred_at == dt.datetime(2099, 1, 1, tzinfo=dt.UTC)


def test_duplicates_and_a_late_sent_change_nothing(client, sent) -> None:
    intent = sent()
    assert post(client, body(intent, "delivered")).status_code == 202
    intent.refresh_from_db()
    delivered_at = intent.delivered_at
    assert post(client, body(intent, "delivered")).status_code == 202
    assert post(client, body(intent, "sent", occurred_at="2098-12-31T23:59:59Z")).status_code == 202
    intent.refresh_from_db()
    assert (intent.delivery_status, intent.delivered_at) == ("delivered", delivered_at)
    assert list(Receipt.objects.order_by("id").values_list("status", "applied")) == [
        ("delivered", True),
        ("sent", False),
    ]


def test_delivered_after_undelivered_is_stored_and_never_goes_back(client, sent) -> None:
    intent = sent()
    assert post(client, body(intent, "undelivered", error_code="busy")).json()["applied"] == 1
    assert post(client, body(intent, "delivered")).json()["stored"] == 1
    intent.refresh_from_db()
    assert (intent.delivery_status, intent.delivered_at) == ("undelivered", None)
    assert DeadLetter.objects.get(intent=intent).reason_code == "delivery_failed"


def test_a_receipt_dated_before_the_attempt_is_stored_flagged_and_listed(
    client, sent, tenant
) -> None:
    from tests.api.conftest import ApiClient, make_key

    intent = sent()
    early = body(intent, "delivered", occurred_at="2001-01-01T00:00:00Z")
    assert post(client, early).json()["applied"] == 1
    row = Receipt.objects.get()
    assert row.flagged_before_attempt and row.received_at >= intent.finished_at
    [listed] = (
        ApiClient(make_key(tenant)).get(f"/api/v1/intents/{intent.public_id}/receipts").json()
    )
    assert (listed["status"], listed["occurred_at"]) == ("delivered", "2001-01-01T00:00:00Z")


def test_a_bad_signature_is_401_logged_and_nothing_is_stored(client, sent, caplog) -> None:
    intent = sent()
    with caplog.at_level(logging.WARNING, logger="portal.security"):
        response = post(client, body(intent, "delivered"), secret=WRONG)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert not Receipt.objects.exists()
    intent.refresh_from_db()
    assert intent.delivery_status == "sent"
    assert any("receipt.signature_rejected" in r.getMessage() for r in caplog.records)
    assert SECRET not in caplog.text and WRONG not in caplog.text


def test_a_tampered_body_is_401(client, sent) -> None:
    intent = sent()
    raw = json.dumps(body(intent, "delivered")).encode()
    now = dt.datetime.now(tz=dt.UTC)
    signature = Webhook(SECRET).sign("m1", now, raw)
    tampered = raw.replace(b"delivered", b"undelivered")
    response = client.post(
        "/hooks/receipts/simulator-sms",
        data=tampered,
        content_type="application/json",
        headers={
            "webhook-id": "m1",
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
        },
    )
    assert response.status_code == 401
    assert not Receipt.objects.exists()


def test_an_unknown_message_id_is_202_and_ignored(client, sent) -> None:
    sent()
    response = post(client, {"message_id": "sim-nobody", "status": "delivered"})
    assert response.status_code == 202
    assert not Receipt.objects.exists()


def test_undelivered_with_the_simulator_permanent_code_dead_letters_and_suppresses(
    client, sent
) -> None:
    intent = sent(to="+15550100410")
    response = post(client, body(intent, "undelivered", error_code="unreachable"))
    assert response.status_code == 202
    intent.refresh_from_db()
    assert intent.delivery_status == "undelivered"
    assert DeadLetter.objects.get(intent=intent).reason_code == "delivery_failed"
    from intents.models import Suppression

    assert Suppression.objects.get().recipient_masked == "+1555•••0410"


def test_a_valid_signature_over_a_malformed_body_is_400(client, sent) -> None:
    sent()
    response = post(client, {"status": "delivered"})
    assert response.status_code == 400
    assert not Receipt.objects.exists()


def test_an_unknown_connection_is_404(client, sent) -> None:
    assert (
        post(client, {"message_id": "x", "status": "delivered"}, connection="nope").status_code
        == 404
    )


def test_without_a_secret_the_builtin_connection_expects_no_receipts_and_refuses_them(
    client, sent, settings
) -> None:
    settings.GATEWAY_SIMULATOR_RECEIPT_SECRET = ""
    from gateways.connections import default_connection
    from gateways.receipts import receipts_expected

    assert not receipts_expected(default_connection("sms").config)
    assert post(client, {"message_id": "x", "status": "delivered"}).status_code == 401


def test_only_post(client, sent) -> None:
    assert client.get("/hooks/receipts/simulator-sms").status_code == 405


def test_a_webhook_connection_verifies_with_its_own_receipt_secret(
    client,
    folders,  # noqa: F811 (fixture)
    simulator,  # noqa: F811 (fixture)
    simulator_settings,  # noqa: F811 (fixture)
    tenant,
    monkeypatch,
) -> None:
    monkeypatch.setenv("HOOK_RECEIPT_SECRET", SECRET)
    folders.connection(
        "hook",
        f"""
        key = "client-hook"
        provider = "webhook"
        [settings]
        url = "{simulator.base_url}/http"
        permanent_error_codes = ["gone"]
        [secrets]
        receipt_secret = "env:HOOK_RECEIPT_SECRET"
        """,
    )
    folders.target(
        "http_hooked",
        """
        key = "http.hooked"
        version = "1.0"
        gateway = "http"
        connections = ["client-hook"]
        attempt_timeout_s = 5
        acceptance_deadline_s = 600
        [retry]
        strategy = "fixed"
        initial_delay_s = 1
        multiplier = 1.0
        max_delay_s = 1
        max_attempts = 3
        [schema]
        type = "object"
        """,
    )
    folders.sync()
    from intents.dispatch import claim_batch
    from intents.execution import execute_batch
    from intents.services import intent_submit

    intent = intent_submit(
        tenant=tenant,
        idempotency_key="hooked",
        target_key="http.hooked",
        contract_version=None,
        payload={"to": "client", "event": "x"},
    ).intent
    batch = claim_batch(tenant_ids=[tenant.id], batch_size=10, worker_id="w", lease_margin_s=30)
    assert batch is not None
    execute_batch(lease_token=batch.lease_token, intent_ids=batch.intent_ids)
    intent.refresh_from_db()
    assert (intent.status, intent.connection, intent.delivery_status) == (
        "accepted",
        "client-hook",
        "sent",
    )
    assert (
        post(client, body(intent, "delivered"), connection="client-hook", secret=WRONG).status_code
        == 401
    )
    assert post(client, body(intent, "delivered"), connection="client-hook").status_code == 202
    intent.refresh_from_db()
    assert intent.delivery_status == "delivered"


def test_the_api_lists_receipts_with_both_clocks_and_fills_the_representation(
    client, sent, tenant, other_tenant
) -> None:
    from tests.api.conftest import ApiClient, make_key

    intent = sent()
    post(client, body(intent, "sent", occurred_at="2099-01-01T00:00:00Z"))
    post(client, body(intent, "delivered", occurred_at="2099-01-01T00:00:04Z"))
    api = ApiClient(make_key(tenant))
    listed = api.get(f"/api/v1/intents/{intent.public_id}/receipts")
    assert listed.status_code == 200
    rows = listed.json()
    assert [(r["status"], r["provider_status"], r["error_code"]) for r in rows] == [
        ("sent", "sent", None),
        ("delivered", "delivered", None),
    ]
    assert rows[1]["occurred_at"] == "2099-01-01T00:00:04Z"
    assert set(rows[1]) == {"status", "provider_status", "error_code", "occurred_at", "received_at"}
    shown = api.get(f"/api/v1/intents/{intent.public_id}").json()
    assert shown["delivery_status"] == "delivered"
    assert shown["delivered_at"] == rows[1]["received_at"]

    foreign = ApiClient(make_key(other_tenant)).get(f"/api/v1/intents/{intent.public_id}/receipts")
    assert foreign.status_code == 404
    assert foreign["Content-Type"] == "application/problem+json"
    no_scope = ApiClient(make_key(tenant, scopes=["intents:write"]))
    assert no_scope.get(f"/api/v1/intents/{intent.public_id}/receipts").status_code == 403


def test_the_intent_page_shows_its_receipts_read_only(client, sent) -> None:
    from tests.accounts.factories import staff_client

    intent = sent()
    post(client, body(intent, "delivered", occurred_at="2000-01-01T00:00:00Z"))
    page = staff_client("ada", ["operators"]).get(f"/admin/intents/intent/{intent.pk}/change/")
    assert page.status_code == 200
    section = page.content.decode().split('id="delivery-receipts"')[1].split("</table>")[0]
    assert section.count("<tr>") == 2  # header + 1 receipt
    assert "<td>delivered</td>" in section
    assert "flagged: before the attempt" in section  # dated 2000, before the attempt
    assert "<input" not in section


def test_the_dashboard_counts_accepted_intents_by_delivery_status(client, sent) -> None:
    from tests.accounts.factories import staff_client

    delivered, undelivered, waiting = sent(), sent(to="+15550100410"), sent()
    post(client, body(delivered, "delivered"))
    post(client, body(undelivered, "undelivered", error_code="unreachable"))
    assert waiting.delivery_status == "sent"
    page = staff_client("ada", ["operators"]).get("/admin/operations/").content.decode()
    tiles = page.split('id="delivery-status"')[1].split("</dl>")[0]
    assert "<dt>sent</dt><dd>1</dd>" in tiles
    assert "<dt>delivered</dt><dd>1</dd>" in tiles
    assert 'class="ops-warn"><dt>undelivered</dt><dd>1</dd>' in tiles
