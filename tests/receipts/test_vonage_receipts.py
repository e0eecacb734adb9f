"""Vonage signed delivery receipts (DLRs): sig checked with the signature secret."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
from urllib.parse import urlencode

import httpx
import pytest
import respx

from gateways.base import ConnectionConfig, ReceiptRejected, ReceiptRequest
from gateways.providers.vonage import VonageProvider
from gateways.secrets import SecretResolver
from intents.models import Intent, Receipt
from tests.connections.conftest import folders, sms_target  # noqa: F401 (fixtures)

SECRET = "vonage-signature-secret-0001"
CONFIG = ConnectionConfig(
    key="vonage-main",
    provider="vonage",
    channel="sms",
    settings={"from": "Acme"},
    secrets={"signature_secret": "env:VONAGE_SIG"},
)


def signed(params: dict, secret: str = SECRET) -> dict:
    """Signed as Vonage's own SDK does: HMAC-SHA256 over "&k=v" sorted, hex."""
    text = "".join(
        f"&{k}={str(params[k]).replace('&', '_').replace('=', '_')}" for k in sorted(params)
    )
    sig = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return {**params, "sig": sig}


def dlr(status: str, **extra) -> dict:
    return {
        "messageId": "0A0000001234567B",
        "msisdn": "447700900001",
        "status": status,
        "err-code": "0",
        "scts": "2601051200",
        "timestamp": str(int(time.time())),
        **extra,
    }


def parse(params: dict):
    request = ReceiptRequest(url="", headers={}, body=b"", form=params)
    return VonageProvider.parse_receipt(CONFIG, request, SecretResolver())


def test_a_signed_dlr_is_read_with_the_carriers_time(monkeypatch) -> None:
    monkeypatch.setenv("VONAGE_SIG", SECRET)
    [receipt] = parse(signed(dlr("delivered")))
    assert (receipt.message_id, receipt.status, receipt.error_code) == (
        "0A0000001234567B",
        "delivered",
        "",
    )
    assert receipt.occurred_at == dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)
    [failed] = parse(signed(dlr("failed", **{"err-code": "9"})))
    assert (failed.status, failed.error_code, failed.permanent) == ("undelivered", "9", True)
    assert parse(signed(dlr("unknown"))) == []


def test_a_wrong_sig_a_tampered_field_or_a_stale_timestamp_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("VONAGE_SIG", SECRET)
    with pytest.raises(ReceiptRejected):
        parse(signed(dlr("delivered"), secret="guessed"))
    tampered = {**signed(dlr("failed")), "status": "delivered"}
    with pytest.raises(ReceiptRejected):
        parse(tampered)
    with pytest.raises(ReceiptRejected, match="5 minutes"):
        parse(signed(dlr("delivered", timestamp=str(int(time.time()) - 600))))
    with pytest.raises(ReceiptRejected):
        parse(dlr("delivered"))  # unsigned


@pytest.mark.django_db
def test_the_hook_refuses_a_forged_dlr_and_ignores_an_unknown_id(
    client,
    folders,  # noqa: F811 (fixture)
    monkeypatch,
) -> None:
    monkeypatch.setenv("VONAGE_SIG", SECRET)
    folders.connection(
        "vonage",
        """
        key = "vonage-main"
        provider = "vonage"
        [settings]
        from = "Acme"
        [secrets]
        api_key = "env:VONAGE_KEY"
        api_secret = "env:VONAGE_SECRET"
        signature_secret = "env:VONAGE_SIG"
        """,
    )
    folders.sync()

    def post(params: dict):
        return client.post(
            "/hooks/receipts/vonage-main",
            data=urlencode(params),
            content_type="application/x-www-form-urlencoded",
        )

    assert post(signed(dlr("delivered"), secret="guessed")).status_code == 401
    answer = post(signed(dlr("delivered")))
    assert answer.status_code == 202 and answer.json()["ignored"] == 1
    assert not Receipt.objects.exists()


VONAGE_CONNECTION = """
key = "vonage-main"
provider = "vonage"
[settings]
from = "Acme"
[secrets]
api_key = "env:VONAGE_KEY"
api_secret = "env:VONAGE_SECRET"
signature_secret = "env:VONAGE_SIG"
"""


@pytest.fixture
def vonage_sent(folders, tenant, settings, monkeypatch):  # noqa: F811
    """An SMS accepted by (a stand-in for) Vonage's SMS API through the engine."""
    for name, value in (("VONAGE_KEY", "k"), ("VONAGE_SECRET", "s"), ("VONAGE_SIG", SECRET)):
        monkeypatch.setenv(name, value)
    settings.GATEWAY_ALLOWED_HOSTS = ["rest.nexmo.com"]
    folders.connection("vonage", VONAGE_CONNECTION)
    folders.target("sms_vonage", sms_target("sms.vonage", ["vonage-main"]))
    folders.sync()
    from intents.dispatch import claim_batch
    from intents.execution import execute_batch
    from intents.services import intent_submit

    intent = intent_submit(
        tenant=tenant,
        idempotency_key="vonage-1",
        target_key="sms.vonage",
        contract_version=None,
        payload={"to": "+447700900001", "text": "hi"},
    ).intent
    accepted = {
        "message-count": "1",
        "messages": [{"message-id": "0A0000001234567B", "status": "0"}],
    }
    with respx.mock:
        respx.post("https://rest.nexmo.com/sms/json").mock(
            return_value=httpx.Response(200, json=accepted)
        )
        batch = claim_batch(tenant_ids=[tenant.id], batch_size=10, worker_id="w", lease_margin_s=30)
        assert batch is not None
        execute_batch(lease_token=batch.lease_token, intent_ids=batch.intent_ids)
    intent = Intent.objects.get(pk=intent.pk)
    assert (intent.gateway_message_id, intent.delivery_status) == ("0A0000001234567B", "sent")
    return intent


def post_dlr(client, params: dict):
    return client.post(
        "/hooks/receipts/vonage-main",
        data=urlencode(signed(params)),
        content_type="application/x-www-form-urlencoded",
    )


@pytest.mark.django_db
def test_delivered_after_failed_through_the_hook_never_goes_back(client, vonage_sent) -> None:
    assert post_dlr(client, dlr("failed", **{"err-code": "5"})).json()["applied"] == 1
    assert post_dlr(client, dlr("delivered")).json()["stored"] == 1
    vonage_sent.refresh_from_db()
    assert (vonage_sent.delivery_status, vonage_sent.delivered_at) == ("undelivered", None)


@pytest.mark.django_db
def test_a_carrier_time_before_our_attempt_is_flagged_never_a_negative_latency(
    client, vonage_sent
) -> None:
    # scts 2001-01-01: the carrier's clock (or its idea of the zone) is off.
    assert post_dlr(client, dlr("delivered", scts="0101010000")).json()["applied"] == 1
    row = Receipt.objects.get()
    assert row.flagged_before_attempt
    assert row.occurred_at == dt.datetime(2001, 1, 1, tzinfo=dt.UTC)
    vonage_sent.refresh_from_db()
    assert vonage_sent.delivered_at >= vonage_sent.finished_at  # our clock only
