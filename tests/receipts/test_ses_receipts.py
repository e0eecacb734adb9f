"""SES events through an SNS HTTP(S) subscription: SNS signatures, topics, SES events.

Bodies are the SNS and SES examples of the AWS documentation, signed here with a
locally generated RSA key whose certificate respx serves at an SNS certificate URL, as
SNS's own would be fetched: the code under test fetches, caches and checks it exactly as
in production. The string to sign is spelled out per type from the AWS documentation
("Verifying the signatures of Amazon SNS messages"), not borrowed from the code.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import logging
from typing import Any

import httpx
import pytest
import respx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from deadletters.models import DeadLetter
from gateways.base import ReceiptInvalid, ReceiptRejected
from gateways.sns_messages import (
    certificates,
    is_signing_certificate_url,
    is_subscribe_url,
    sns_message_verify,
    string_to_sign,
)
from intents.models import Intent, Receipt, Suppression
from portal.audit.models import AuditEvent
from tests.connections.conftest import folders  # noqa: F401 (fixture)

REGION = "us-west-2"
TOPIC = "arn:aws:sns:us-west-2:123456789012:MyTopic"
CERT_URL = (
    "https://sns.us-west-2.amazonaws.com/"
    "SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem"
)
SES_ID = "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000"
SUBSCRIBE_URL = (
    "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription"
    "&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37"
)
NOW = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)

# The documented examples (docs.aws.amazon.com/sns/latest/dg/http-notification-json.html,
# http-subscription-confirmation-json.html), without their example signatures.
NOTIFICATION = {
    "Type": "Notification",
    "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
    "TopicArn": TOPIC,
    "Subject": "My First Message",
    "Message": "Hello world!",
    "Timestamp": "2012-05-02T00:54:06.655Z",
    "SigningCertURL": CERT_URL,
    "UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe"
    "&SubscriptionArn=arn:aws:sns:us-west-2:123456789012:MyTopic:c9135db0",
}
CONFIRMATION = {
    "Type": "SubscriptionConfirmation",
    "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
    "Token": "2336412f37",
    "TopicArn": TOPIC,
    "Message": "You have chosen to subscribe to the topic "
    "arn:aws:sns:us-west-2:123456789012:MyTopic.\n"
    "To confirm the subscription, visit the SubscribeURL included in this message.",
    "SubscribeURL": SUBSCRIBE_URL,
    "Timestamp": "2012-04-26T20:45:04.751Z",
    "SigningCertURL": CERT_URL,
}
# SES event publishing examples (docs.aws.amazon.com/ses/latest/dg/event-publishing-
# retrieving-sns-examples.html), trimmed to the fields the receipt reads.
MAIL = {
    "timestamp": "2026-01-05T12:00:01.012Z",
    "source": "Sender Name <sender@example.com>",
    "sendingAccountId": "123456789012",
    "messageId": SES_ID,
    "destination": ["recipient@example.com"],
}
DELIVERY: dict[str, Any] = {
    "eventType": "Delivery",
    "mail": MAIL,
    "delivery": {
        "timestamp": "2026-01-05T12:00:03.133Z",
        "processingTimeMillis": 11893,
        "recipients": ["recipient@example.com"],
        "smtpResponse": "250 2.6.0 Message received",
        "reportingMTA": "mta.example.com",
    },
}
PERMANENT_BOUNCE = {
    "eventType": "Bounce",
    "mail": MAIL,
    "bounce": {
        "bounceType": "Permanent",
        "bounceSubType": "General",
        "bouncedRecipients": [
            {
                "emailAddress": "recipient@example.com",
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown",
            }
        ],
        "timestamp": "2026-01-05T12:00:02.669Z",
        "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
        "reportingMTA": "dsn; mta.example.com",
    },
}
TRANSIENT_BOUNCE: dict[str, Any] = copy.deepcopy(PERMANENT_BOUNCE)
TRANSIENT_BOUNCE["bounce"].update(bounceType="Transient", bounceSubType="MailboxFull")
COMPLAINT = {
    "notificationType": "Complaint",  # the identity-notification form of the same event
    "mail": MAIL,
    "complaint": {
        "complainedRecipients": [{"emailAddress": "recipient@example.com"}],
        "timestamp": "2026-01-05T12:05:00.000Z",
        "feedbackId": "0100015fd2f0a1c3-example",
        "userAgent": "Mozilla/5.0",
        "complaintFeedbackType": "abuse",
    },
}
REJECT = {"eventType": "Reject", "mail": MAIL, "reject": {"reason": "Bad content"}}
DELAY = {
    "eventType": "DeliveryDelay",
    "mail": MAIL,
    "deliveryDelay": {
        "timestamp": "2026-01-05T12:00:02.000Z",
        "delayType": "TransientCommunicationFailure",
        "delayedRecipients": [{"emailAddress": "recipient@example.com", "status": "4.4.1"}],
    },
}


def make_certificate(common_name: str = "sns.amazonaws.com"):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2040, 1, 1, tzinfo=dt.UTC))
        .sign(key, hashes.SHA256())
    )
    return key, certificate.public_bytes(serialization.Encoding.PEM)


KEY, CERT_PEM = make_certificate()
OTHER_KEY, _ = make_certificate()

# AWS: "Notification: Message, MessageId, Subject (if present), Timestamp, TopicArn,
# Type"; "SubscriptionConfirmation and UnsubscribeConfirmation: Message, MessageId,
# SubscribeURL, Timestamp, Token, TopicArn, Type".
DOCUMENTED_KEYS = {
    "Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
    "SubscriptionConfirmation": [
        *("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
    ],
}


def signed(message: dict, *, version: str = "1", key=KEY) -> dict:
    """``message`` with a SignatureVersion and a Signature, as SNS makes them."""
    text = "".join(
        f"{name}\n{message[name]}\n" for name in DOCUMENTED_KEYS[message["Type"]] if name in message
    )
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 (SNS v1)
    signature = key.sign(text.encode(), padding.PKCS1v15(), algorithm)
    return {
        **message,
        "SignatureVersion": version,
        "Signature": base64.b64encode(signature).decode(),
    }


def ses_notification(event: dict, **changes) -> dict:
    """An SNS Notification carrying an SES event, as an SNS HTTP subscription posts it."""
    return {
        **NOTIFICATION,
        "Subject": "Amazon SES Email Event Notification",
        "Message": json.dumps(event),
        **changes,
    }


@pytest.fixture(autouse=True)
def aws():
    """The AWS hosts these tests reach (respx); the certificate cache starts empty."""
    certificates.clear()
    with respx.mock(assert_all_called=False) as mock:
        yield mock
    certificates.clear()


@pytest.fixture(autouse=True)
def sns_certificate(aws):
    """SNS's certificate URL serves the locally generated certificate."""
    return aws.get(CERT_URL).mock(return_value=httpx.Response(200, content=CERT_PEM))


def verify(message: dict):
    return sns_message_verify(json.dumps(message).encode(), now=NOW)


def test_the_string_to_sign_is_the_documented_one() -> None:
    assert string_to_sign(NOTIFICATION) == (
        b"Message\nHello world!\n"
        b"MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n"
        b"Subject\nMy First Message\n"
        b"Timestamp\n2012-05-02T00:54:06.655Z\n"
        b"TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\n"
        b"Type\nNotification\n"
    )
    without_subject = {k: v for k, v in NOTIFICATION.items() if k != "Subject"}
    assert b"Subject" not in string_to_sign(without_subject)
    assert string_to_sign(CONFIRMATION).startswith(
        b"Message\nYou have chosen to subscribe to the topic "
    )
    assert string_to_sign(CONFIRMATION).endswith(
        f"SubscribeURL\n{SUBSCRIBE_URL}\nTimestamp\n2012-04-26T20:45:04.751Z\n"
        f"Token\n2336412f37\nTopicArn\n{TOPIC}\nType\nSubscriptionConfirmation\n".encode()
    )


@pytest.mark.parametrize("version", ["1", "2"])
def test_both_signature_versions_verify_and_the_certificate_is_fetched_once(
    version, sns_certificate
) -> None:
    message = verify(signed(NOTIFICATION, version=version))
    assert (message.type, message.topic_arn, message.message) == (
        "Notification",
        TOPIC,
        "Hello world!",
    )
    assert verify(signed(CONFIRMATION, version=version)).subscribe_url == SUBSCRIBE_URL
    assert sns_certificate.call_count == 1  # cached by URL


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda m: {**signed(m), "Message": "Hello world?"}, id="tampered message"),
        pytest.param(lambda m: {**signed(m), "TopicArn": TOPIC + "2"}, id="tampered topic"),
        pytest.param(lambda m: signed(m, key=OTHER_KEY), id="another key"),
        pytest.param(
            lambda m: {**signed(m, version="1"), "SignatureVersion": "2"}, id="wrong version"
        ),
        pytest.param(lambda m: {**signed(m), "SignatureVersion": "3"}, id="unknown version"),
        pytest.param(lambda m: {**signed(m), "Signature": "not base64!"}, id="not base64"),
        pytest.param(
            lambda m: {k: v for k, v in signed(m).items() if k != "Signature"}, id="unsigned"
        ),
    ],
)
def test_a_forged_or_tampered_message_is_rejected(forge) -> None:
    with pytest.raises(ReceiptRejected):
        verify(forge(NOTIFICATION))


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.us-west-2.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-west-2.amazonaws.com.evil.example/SimpleNotificationService-1.pem",
        "https://evil.example/sns.us-west-2.amazonaws.com/SimpleNotificationService-1.pem",
        "https://s3.us-west-2.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-west-2.amazonaws.com:8443/SimpleNotificationService-1.pem",
        "https://user@sns.us-west-2.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-1.pem?x=1",
        "https://sns.us-west-2.amazonaws.com/../../etc/passwd",
        "https://SNS.us-west-2.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.evil.amazonaws.com/SimpleNotificationService-1.pem",
    ],
)
def test_a_certificate_from_anywhere_but_an_sns_host_is_never_fetched(url, sns_certificate) -> None:
    assert not is_signing_certificate_url(url)
    with pytest.raises(ReceiptRejected, match="not an SNS certificate URL"):
        verify(signed({**NOTIFICATION, "SigningCertURL": url}))
    assert sns_certificate.call_count == 0


def test_sns_hosts_of_every_partition_form_pass() -> None:
    for region in ("us-east-1", "eu-central-1", "ap-southeast-4", "us-gov-west-1"):
        assert is_signing_certificate_url(f"https://sns.{region}.amazonaws.com/SNS-ab.pem")
    assert is_subscribe_url(SUBSCRIBE_URL)
    assert not is_subscribe_url(SUBSCRIBE_URL.replace("ConfirmSubscription", "Unsubscribe"))
    assert not is_subscribe_url(SUBSCRIBE_URL.replace("sns.us-west-2", "evil"))


def test_an_unavailable_certificate_rejects_and_is_not_cached(sns_certificate) -> None:
    sns_certificate.mock(return_value=httpx.Response(404))
    with pytest.raises(ReceiptRejected, match="HTTP 404"):
        verify(signed(NOTIFICATION))
    sns_certificate.mock(return_value=httpx.Response(200, content=b"not a certificate"))
    with pytest.raises(ReceiptRejected, match="not a PEM"):
        verify(signed(NOTIFICATION))
    sns_certificate.mock(return_value=httpx.Response(200, content=CERT_PEM))
    assert verify(signed(NOTIFICATION)).message == "Hello world!"


def test_a_body_that_is_no_sns_message_is_invalid() -> None:
    with pytest.raises(ReceiptInvalid):
        sns_message_verify(b"not json", now=NOW)
    with pytest.raises(ReceiptInvalid):
        verify({"Type": "Something"})


# --- through the hook, with a real SES send through the engine ----------------------


@pytest.fixture
def ses_sent(folders, tenant, settings, monkeypatch, aws):  # noqa: F811
    """An email accepted by (a stand-in for) SES's SendEmail through the engine."""
    monkeypatch.setenv("SES_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("SES_SECRET", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    settings.GATEWAY_ALLOWED_HOSTS = ["email.us-west-2.amazonaws.com"]
    folders.connection(
        "ses",
        f"""
        key = "ses-main"
        provider = "ses"
        channel = "email"
        [settings]
        region = "{REGION}"
        from = "sender@example.com"
        receipts_topic_arn = "{TOPIC}"
        [secrets]
        access_key_id = "env:SES_KEY_ID"
        secret_access_key = "env:SES_SECRET"
        """,
    )
    folders.target(
        "email_ses",
        """
        key = "email.ses"
        version = "1.0"
        gateway = "email"
        connections = ["ses-main"]
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
        required = ["to", "subject", "text"]
        """,
    )
    folders.sync()
    from intents.dispatch import claim_batch
    from intents.execution import execute_batch
    from intents.services import intent_submit

    def make(to: str = "recipient@example.com") -> Intent:
        intent = intent_submit(
            tenant=tenant,
            idempotency_key=f"ses-{to}",
            target_key="email.ses",
            contract_version=None,
            payload={"to": to, "subject": "Hi", "text": "hello"},
        ).intent
        route = aws.post("https://email.us-west-2.amazonaws.com/v2/email/outbound-emails")
        route.mock(return_value=httpx.Response(200, json={"MessageId": SES_ID}))
        batch = claim_batch(tenant_ids=[tenant.id], batch_size=10, worker_id="w", lease_margin_s=30)
        assert batch is not None
        execute_batch(lease_token=batch.lease_token, intent_ids=batch.intent_ids)
        assert route.called
        return Intent.objects.get(pk=intent.pk)

    return make


def post(client, message: dict):
    return client.post(
        "/hooks/receipts/ses-main",
        data=json.dumps(message),
        content_type="text/plain; charset=UTF-8",  # as SNS posts
        headers={"x-amz-sns-message-type": message["Type"]},
    )


def test_a_delivery_event_is_applied_once_with_the_providers_clock(client, ses_sent) -> None:
    intent = ses_sent()
    assert (intent.gateway_message_id, intent.delivery_status) == (SES_ID, "sent")
    body = signed(ses_notification(DELIVERY), version="2")
    assert post(client, body).json() == {
        "received": 1,
        "applied": 1,
        "stored": 0,
        "duplicate": 0,
        "ignored": 0,
    }
    assert post(client, body).json()["duplicate"] == 1  # SNS delivers at least once
    intent.refresh_from_db()
    assert intent.delivery_status == "delivered"
    row = Receipt.objects.get()
    assert (row.status, row.provider_status, row.error_code, row.occurred_at) == (
        "delivered",
        "Delivery",
        "",
        dt.datetime(2026, 1, 5, 12, 0, 3, 133000, tzinfo=dt.UTC),
    )


def test_a_permanent_bounce_dead_letters_and_suppresses_the_bounced_address(
    client, ses_sent
) -> None:
    intent = ses_sent()
    assert post(client, signed(ses_notification(PERMANENT_BOUNCE))).json()["applied"] == 1
    intent.refresh_from_db()
    assert intent.delivery_status == "undelivered"
    assert DeadLetter.objects.get(intent=intent).reason_code == "delivery_failed"
    suppression = Suppression.objects.get()
    assert (suppression.channel, suppression.recipient_masked, suppression.provider_code) == (
        "email",
        "r•••@example.com",
        "General",
    )
    row = Receipt.objects.get()
    assert (row.provider_status, row.error_code) == ("Bounce:Permanent", "General")


def test_a_transient_bounce_dead_letters_without_suppressing(client, ses_sent) -> None:
    intent = ses_sent()
    assert post(client, signed(ses_notification(TRANSIENT_BOUNCE))).status_code == 202
    assert DeadLetter.objects.get(intent=intent).reason_code == "delivery_failed"
    assert not Suppression.objects.exists()
    assert Receipt.objects.get().error_code == "MailboxFull"


def test_a_complaint_after_delivery_suppresses_and_keeps_delivered(client, ses_sent) -> None:
    intent = ses_sent()
    post(client, signed(ses_notification(DELIVERY)))
    assert post(client, signed(ses_notification(COMPLAINT))).json()["stored"] == 1
    intent.refresh_from_db()
    assert intent.delivery_status == "delivered"
    assert Suppression.objects.get().provider_code == "abuse"
    assert not DeadLetter.objects.exists()


def test_reject_is_undelivered_and_a_delay_is_only_stored(client, ses_sent) -> None:
    intent = ses_sent()
    assert post(client, signed(ses_notification(DELAY))).json()["stored"] == 1
    assert post(client, signed(ses_notification(REJECT))).json()["applied"] == 1
    intent.refresh_from_db()
    assert intent.delivery_status == "undelivered"
    assert list(
        Receipt.objects.order_by("id").values_list("status", "provider_status", "error_code")
    ) == [
        ("sent", "DeliveryDelay", "TransientCommunicationFailure"),
        ("undelivered", "Reject", "Bad content"),
    ]
    assert not Suppression.objects.exists()


def test_delivered_after_a_bounce_never_goes_back(client, ses_sent) -> None:
    intent = ses_sent()
    post(client, signed(ses_notification(TRANSIENT_BOUNCE)))
    assert post(client, signed(ses_notification(DELIVERY))).json()["stored"] == 1
    intent.refresh_from_db()
    assert intent.delivery_status == "undelivered" and intent.delivered_at is None


def test_an_event_dated_before_our_attempt_is_flagged(client, ses_sent) -> None:
    intent = ses_sent()
    early = {**DELIVERY, "delivery": {**DELIVERY["delivery"], "timestamp": "2012-05-02T00:54:06Z"}}
    assert post(client, signed(ses_notification(early))).json()["applied"] == 1
    row = Receipt.objects.get()
    assert row.flagged_before_attempt and row.received_at >= intent.finished_at


def test_an_unknown_message_id_is_202_and_ignored(client, ses_sent) -> None:
    ses_sent()
    event = {**DELIVERY, "mail": {**MAIL, "messageId": "someone-elses-message"}}
    assert post(client, signed(ses_notification(event))).json()["ignored"] == 1
    assert not Receipt.objects.exists()


def test_open_and_click_events_are_no_receipt(client, ses_sent) -> None:
    ses_sent()
    event = {"eventType": "Open", "mail": MAIL, "open": {"timestamp": "2026-01-05T12:10:00Z"}}
    assert post(client, signed(ses_notification(event))).json()["received"] == 0


def test_forged_wrong_host_and_foreign_topic_are_401_logged_and_store_nothing(
    client, ses_sent, caplog, sns_certificate
) -> None:
    ses_sent()
    forged = signed(ses_notification(DELIVERY), key=OTHER_KEY)
    elsewhere = signed(ses_notification(DELIVERY, SigningCertURL="https://evil.example/cert.pem"))
    # Properly signed by SNS, but for someone else's topic subscribed to our URL.
    foreign = signed(ses_notification(DELIVERY, TopicArn="arn:aws:sns:us-west-2:999999999999:T"))
    with caplog.at_level(logging.WARNING, logger="portal.security"):
        for body in (forged, elsewhere, foreign):
            answer = post(client, body)
            assert answer.status_code == 401
            assert answer["Content-Type"] == "application/problem+json"
    rejected = [r for r in caplog.records if r.name == "portal.security"]
    assert len(rejected) == 3
    assert "evil.example" in str(rejected[1].msg)
    assert not Receipt.objects.exists()
    assert sns_certificate.call_count == 1  # never fetched from evil.example


def test_a_subscription_confirmation_visits_only_an_sns_link_and_is_audited(
    client, ses_sent, aws
) -> None:
    confirm = aws.get(url__startswith="https://sns.us-west-2.amazonaws.com/?Action=")
    confirm.mock(return_value=httpx.Response(200, text="<ConfirmSubscriptionResponse/>"))
    assert post(client, signed(CONFIRMATION)).status_code == 202
    assert confirm.call_count == 1
    assert str(confirm.calls.last.request.url) == SUBSCRIBE_URL
    evil = "https://evil.example/?Action=ConfirmSubscription"
    assert post(client, signed({**CONFIRMATION, "SubscribeURL": evil})).status_code == 401
    assert confirm.call_count == 1
    event = AuditEvent.objects.get(action="connection.receipts_subscription_confirmed")
    assert (event.object_id, event.data["topic_arn"]) == ("ses-main", TOPIC)


def test_a_refused_confirmation_is_400_and_not_audited(client, ses_sent, aws) -> None:
    aws.get(url__startswith="https://sns.us-west-2.amazonaws.com/?Action=").mock(
        return_value=httpx.Response(403)
    )
    assert post(client, signed(CONFIRMATION)).status_code == 400
    assert not AuditEvent.objects.filter(action__startswith="connection.receipts").exists()


def test_without_a_topic_the_connection_expects_no_receipts_and_refuses_them(
    client,
    folders,  # noqa: F811 (fixture)
    tenant,
) -> None:
    folders.connection(
        "ses",
        """
        key = "ses-quiet"
        provider = "ses"
        channel = "email"
        [settings]
        region = "us-west-2"
        from = "sender@example.com"
        """,
    )
    folders.sync()
    answer = client.post(
        "/hooks/receipts/ses-quiet",
        data=json.dumps(signed(ses_notification(DELIVERY))),
        content_type="text/plain",
    )
    assert answer.status_code == 401
