"""Twilio status callbacks: X-Twilio-Signature checked with the auth token.

Requests through the hook are signed by the ``twilio`` package's own RequestValidator,
not by our code."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest
import respx
from twilio.request_validator import RequestValidator

from deadletters.models import DeadLetter
from gateways.base import ConnectionConfig, ReceiptRejected, ReceiptRequest
from gateways.providers.twilio import TwilioProvider, twilio_signature
from gateways.secrets import SecretResolver
from intents.models import Intent, Receipt, Suppression
from tests.connections.conftest import folders, sms_target  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db
TOKEN = "twilio-test-auth-token-0001"
CALLBACK = "https://portal.example.com/hooks/receipts/twilio-main"
SID = "SM0123456789abcdef0123456789abcdef"


def test_the_signature_matches_twilios_documented_example() -> None:
    # twilio.com/docs/usage/security, "Validating requests": auth token 12345.
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature("12345", url, params) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert RequestValidator("12345").validate(url, params, twilio_signature("12345", url, params))


def test_parse_maps_statuses_and_refuses_a_wrong_signature(monkeypatch) -> None:
    monkeypatch.setenv("TW_TOKEN", TOKEN)
    config = ConnectionConfig(
        key="twilio-main",
        provider="twilio",
        channel="sms",
        settings={"status_callback": CALLBACK},
        secrets={"auth_token": "env:TW_TOKEN"},
    )
    form = {"MessageSid": SID, "MessageStatus": "failed", "ErrorCode": "30006"}
    good = ReceiptRequest(
        url="http://internal:8000/hooks/receipts/twilio-main",
        headers={"x-twilio-signature": twilio_signature(TOKEN, CALLBACK, form)},
        body=b"",
        form=form,
    )
    [receipt] = TwilioProvider.parse_receipt(config, good, SecretResolver())
    assert (receipt.status, receipt.provider_status, receipt.error_code, receipt.permanent) == (
        "undelivered",
        "failed",
        "30006",
        True,
    )
    queued = {"MessageSid": SID, "MessageStatus": "queued"}
    signed = ReceiptRequest(
        url=CALLBACK,
        headers={"x-twilio-signature": twilio_signature(TOKEN, CALLBACK, queued)},
        body=b"",
        form=queued,
    )
    assert TwilioProvider.parse_receipt(config, signed, SecretResolver()) == []
    forged = ReceiptRequest(
        url=CALLBACK,
        headers={"x-twilio-signature": twilio_signature("not-the-token", CALLBACK, form)},
        body=b"",
        form=form,
    )
    with pytest.raises(ReceiptRejected):
        TwilioProvider.parse_receipt(config, forged, SecretResolver())


@pytest.fixture
def twilio_sent(folders, tenant, settings, monkeypatch):  # noqa: F811
    """An SMS accepted by (a stand-in for) Twilio's Messages API through the engine."""
    monkeypatch.setenv("TW_TOKEN", TOKEN)
    settings.GATEWAY_ALLOWED_HOSTS = ["api.twilio.com"]
    folders.connection(
        "twilio",
        f"""
        key = "twilio-main"
        provider = "twilio"
        [settings]
        account_sid = "AC0001"
        from = "+15550009999"
        status_callback = "{CALLBACK}"
        [secrets]
        auth_token = "env:TW_TOKEN"
        """,
    )
    folders.target("sms_tw", sms_target("sms.tw", ["twilio-main"]))
    folders.sync()
    from intents.dispatch import claim_batch
    from intents.execution import execute_batch
    from intents.services import intent_submit

    def make(to: str = "+15550100001") -> Intent:
        intent = intent_submit(
            tenant=tenant,
            idempotency_key=f"tw-{to}",
            target_key="sms.tw",
            contract_version=None,
            payload={"to": to, "text": "hi"},
        ).intent
        with respx.mock:
            route = respx.post("https://api.twilio.com/2010-04-01/Accounts/AC0001/Messages.json")
            route.mock(return_value=httpx.Response(201, json={"sid": SID, "status": "queued"}))
            batch = claim_batch(
                tenant_ids=[tenant.id], batch_size=10, worker_id="w", lease_margin_s=30
            )
            assert batch is not None
            execute_batch(lease_token=batch.lease_token, intent_ids=batch.intent_ids)
            assert b"StatusCallback=" in route.calls.last.request.content
        return Intent.objects.get(pk=intent.pk)

    return make


def post(client, form: dict, *, token: str = TOKEN):
    signature = RequestValidator(token).compute_signature(CALLBACK, form)
    return client.post(
        "/hooks/receipts/twilio-main",
        data=urlencode(form),
        content_type="application/x-www-form-urlencoded",  # as Twilio posts
        headers={"x-twilio-signature": signature},
    )


def test_delivered_through_the_hook(client, twilio_sent) -> None:
    intent = twilio_sent()
    assert (intent.connection, intent.gateway_message_id, intent.delivery_status) == (
        "twilio-main",
        SID,
        "sent",
    )
    assert post(client, {"MessageSid": SID, "MessageStatus": "sent"}).status_code == 202
    assert post(client, {"MessageSid": SID, "MessageStatus": "delivered"}).status_code == 202
    assert post(client, {"MessageSid": SID, "MessageStatus": "delivered"}).status_code == 202
    intent.refresh_from_db()
    assert intent.delivery_status == "delivered"
    assert list(Receipt.objects.values_list("status", "provider_status", "occurred_at")) == [
        ("sent", "sent", None),
        ("delivered", "delivered", None),
    ]


def test_a_forged_callback_is_401_and_stores_nothing(client, twilio_sent) -> None:
    twilio_sent()
    form = {"MessageSid": SID, "MessageStatus": "delivered"}
    assert post(client, form, token="guessed").status_code == 401
    assert not Receipt.objects.exists()


def test_failed_with_a_permanent_code_dead_letters_and_suppresses(client, twilio_sent) -> None:
    intent = twilio_sent()
    form = {"MessageSid": SID, "MessageStatus": "undelivered", "ErrorCode": "30005"}
    assert post(client, form).status_code == 202
    assert DeadLetter.objects.get(intent=intent).reason_code == "delivery_failed"
    assert Suppression.objects.get().provider_code == "30005"


def test_delivered_after_failed_is_stored_and_never_goes_back(client, twilio_sent) -> None:
    intent = twilio_sent()
    assert (
        post(client, {"MessageSid": SID, "MessageStatus": "failed", "ErrorCode": "30003"}).json()[
            "applied"
        ]
        == 1
    )
    late = post(client, {"MessageSid": SID, "MessageStatus": "delivered"})
    assert late.json()["stored"] == 1
    intent.refresh_from_db()
    assert (intent.delivery_status, intent.delivered_at) == ("undelivered", None)
    assert list(Receipt.objects.order_by("id").values_list("status", "applied")) == [
        ("undelivered", True),
        ("delivered", False),
    ]


def test_a_callback_before_the_acceptance_is_recorded_is_ignored_until_it_comes_again(
    client, twilio_sent
) -> None:
    # Twilio may call back before our worker has written the send's answer: the sid is
    # nobody's yet. 202 (Twilio would retry a refusal), nothing stored, nothing broken.
    early = post(client, {"MessageSid": SID, "MessageStatus": "delivered"})
    assert (early.status_code, early.json()["ignored"]) == (202, 1)
    assert not Receipt.objects.exists()
    intent = twilio_sent()
    assert intent.delivery_status == "sent"
    assert post(client, {"MessageSid": SID, "MessageStatus": "delivered"}).json()["applied"] == 1
    intent.refresh_from_db()
    assert intent.delivery_status == "delivered"
