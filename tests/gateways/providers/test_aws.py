"""sns and ses against moto in server mode (a real SigV4-checking HTTP peer), and their
documented error answers against httpx.MockTransport."""

from __future__ import annotations

import json
from email import message_from_string, policy

import boto3
import httpx
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from moto.sns.models import sns_backends

from gateways.adapters.base_http import new_http_client
from gateways.base import Outcome
from gateways.providers import provider_class
from gateways.providers.ses import SesProvider
from gateways.providers.sns import SnsProvider

from ..conftest import Recorder
from .conftest import DictSecrets, connection, run

REGION = "eu-west-1"
KEY_ID, SECRET_KEY = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SECRETS = DictSecrets({"env:AWS_ACCESS_KEY_ID": KEY_ID, "file:/run/secrets/aws": SECRET_KEY})


def aws_connection(provider: str, channel: str, endpoint: str, **settings):
    return connection(
        provider,
        channel,
        settings={"region": REGION, "endpoint_url": endpoint, **settings},
        secrets={
            "access_key_id": "env:AWS_ACCESS_KEY_ID",
            "secret_access_key": "file:/run/secrets/aws",
        },
    )


def sns(client, endpoint: str, secrets=None, **settings) -> SnsProvider:
    return SnsProvider(
        config=aws_connection("sns", "sms", endpoint, **settings),
        client=client,
        secrets=secrets or SECRETS,
    )


def ses(client, endpoint: str, secrets=None, **settings) -> SesProvider:
    settings.setdefault("from", "Acme <noreply@acme.example>")
    return SesProvider(
        config=aws_connection("ses", "email", endpoint, **settings),
        client=client,
        secrets=secrets or SECRETS,
    )


def test_registered() -> None:
    assert provider_class("sns") is SnsProvider
    assert provider_class("ses") is SesProvider


# --- SNS ---------------------------------------------------------------------------------


def test_sns_publish_reaches_moto(moto, make_message) -> None:
    message = make_message({"to": "+447700900123", "text": "Your code is 424242"})

    result = run(
        lambda c: sns(c, moto, sender_id="ACME", sms_type="Transactional").send(
            message, timeout_s=5
        ),
        new_http_client(),
    )

    assert result.outcome is Outcome.ACCEPTED, result.error
    stored = sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages
    assert stored == {result.message_id: ("+447700900123", "Your code is 424242")}


def test_sns_invalid_number_is_suppressed(moto, make_message) -> None:
    message = make_message({"to": "+44 7700 900123", "text": "x"})  # not E.164
    result = run(lambda c: sns(c, moto).send(message, timeout_s=5), new_http_client())
    assert result.outcome is Outcome.REJECTED_PERMANENT
    assert result.suppress_recipient
    assert result.provider_code == "InvalidParameter"
    assert sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages == {}


def test_sns_probe_reads_sms_attributes(moto) -> None:
    probe = run(lambda c: sns(c, moto).probe(timeout_s=5), new_http_client())
    assert probe.ok, probe.detail


def test_sns_request_is_signed_for_the_region(make_message, allow_hosts) -> None:
    allow_hosts(f"sns.{REGION}.amazonaws.com")
    recorder = Recorder(
        httpx.Response(
            200,
            text=(
                '<PublishResponse xmlns="https://sns.amazonaws.com/doc/2010-03-31/">'
                "<PublishResult><MessageId>567910cd-659e-55d4-8ccb-5aaf14679dc0</MessageId>"
                "</PublishResult><ResponseMetadata><RequestId>d74b8436-ae13-5ab4-a9ff-ce54dfea72a0"
                "</RequestId></ResponseMetadata></PublishResponse>"
            ),
        )
    )
    message = make_message({"to": "+447700900123", "text": "hi", "from": "ACME"})

    result = run(lambda c: sns(c, "").send(message, timeout_s=5), recorder.client())

    assert result.message_id == "567910cd-659e-55d4-8ccb-5aaf14679dc0"
    (request,) = recorder.requests
    assert str(request.url) == f"https://sns.{REGION}.amazonaws.com/"
    auth = request.headers["Authorization"]
    assert auth.startswith(f"AWS4-HMAC-SHA256 Credential={KEY_ID}/")
    assert f"/{REGION}/sns/aws4_request" in auth
    assert SECRET_KEY not in auth
    body = dict(httpx.QueryParams(request.content.decode()))
    assert body["Action"] == "Publish"
    assert body["MessageAttributes.entry.1.Name"] == "AWS.SNS.SMS.SenderID"
    assert body["MessageAttributes.entry.1.Value.StringValue"] == "ACME"


def sns_error(code: str, message: str, kind: str = "Sender") -> str:
    return (
        '<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
        f"<Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>9dd01905-5012-5f99-8663-4b3ecd0dfaef</RequestId></ErrorResponse>"
    )


@pytest.mark.parametrize(
    ("status", "code", "message", "outcome", "suppress", "auth_failed"),
    [
        (
            400,
            "InvalidParameter",
            "Invalid parameter: PhoneNumber Reason: +1555 is not valid to publish to",
            Outcome.REJECTED_PERMANENT,
            True,
            False,
        ),
        (
            400,
            "InvalidParameter",
            "Invalid parameter: MessageAttributes Reason: SenderID too long",
            Outcome.REJECTED_PERMANENT,
            False,
            False,
        ),
        (
            400,
            "VerificationException",
            "Destination phone number not verified (SMS sandbox)",
            Outcome.REJECTED_PERMANENT,
            False,
            False,
        ),
        (400, "Throttled", "Rate exceeded", Outcome.REJECTED_TRANSIENT, False, False),
        (500, "InternalError", "Internal error", Outcome.REJECTED_TRANSIENT, False, False),
        (
            403,
            "InvalidClientTokenId",
            "The security token included in the request is invalid.",
            Outcome.REJECTED_TRANSIENT,
            False,
            True,
        ),
        (
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match",
            Outcome.REJECTED_TRANSIENT,
            False,
            True,
        ),
        (
            403,
            "AuthorizationError",
            "User is not authorized to perform: SNS:Publish",
            Outcome.REJECTED_TRANSIENT,
            False,
            True,
        ),
    ],
)
def test_sns_documented_errors(
    make_message, allow_hosts, status, code, message, outcome, suppress, auth_failed
) -> None:
    allow_hosts("sns.example")
    recorder = Recorder(httpx.Response(status, text=sns_error(code, message)))
    secrets = DictSecrets(SECRETS.values)
    result = run(
        lambda c: sns(c, "https://sns.example", secrets).send(make_message(), timeout_s=5),
        recorder.client(),
    )
    assert (result.outcome, result.suppress_recipient, result.auth_failed) == (
        outcome,
        suppress,
        auth_failed,
    )
    assert result.provider_code == code
    assert bool(secrets.invalidated) == auth_failed


# --- SES ---------------------------------------------------------------------------------


@pytest.fixture
def verified_sender(moto) -> str:
    client = boto3.client(
        "sesv2",
        region_name=REGION,
        endpoint_url=moto,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET_KEY,
    )
    client.create_email_identity(EmailIdentity="noreply@acme.example")
    return moto


def test_ses_send_email_reaches_moto(verified_sender, make_message) -> None:
    message = make_message(
        {
            "to": ["ann@example.org"],
            "cc": "carol@example.org",
            "bcc": "dave@example.org",
            "reply_to": "support@acme.example",
            "subject": "Your receipt",
            "text": "Total: 12.00 EUR",
            "html": "<p>Total: <b>12.00 EUR</b></p>",
            "headers": {"X-Order": "17"},
        },
        key="intent-7",
    )

    result = run(lambda c: ses(c, verified_sender).send(message, timeout_s=5), new_http_client())

    assert result.outcome is Outcome.ACCEPTED, result.error
    (stored,) = ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages
    assert stored.id == result.message_id
    assert stored.source == "Acme <noreply@acme.example>"
    assert {"ann@example.org", "carol@example.org", "dave@example.org"} <= {
        address.rpartition("<")[2].rstrip(">") for address in stored.destinations
    }
    mail = message_from_string(stored.raw_data, policy=policy.default)
    assert mail["Subject"] == "Your receipt"
    assert mail["To"] == "ann@example.org"
    assert mail["Cc"] == "carol@example.org"
    assert mail["Bcc"] is None
    assert mail["Reply-To"] == "support@acme.example"
    assert mail["X-Order"] == "17"
    assert mail["Message-ID"] == "<intent-7@acme.example>"
    plain, html = mail.get_body(("plain",)), mail.get_body(("html",))
    assert plain is not None
    assert html is not None
    assert plain.get_content().strip() == "Total: 12.00 EUR"
    assert html.get_content().strip() == "<p>Total: <b>12.00 EUR</b></p>"


def test_ses_unverified_sender_is_rejected(moto, make_message) -> None:
    message = make_message({"to": "ann@example.org", "subject": "s", "text": "t"})
    result = run(lambda c: ses(c, moto).send(message, timeout_s=5), new_http_client())
    assert result.outcome is Outcome.REJECTED_PERMANENT
    assert result.provider_code == "MessageRejected"
    assert not result.suppress_recipient
    assert ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages == []


def test_ses_request_shape(make_message, allow_hosts) -> None:
    allow_hosts(f"email.{REGION}.amazonaws.com")
    recorder = Recorder(httpx.Response(200, json={"MessageId": "0100018c-abcd"}))
    message = make_message({"to": "ann@example.org", "subject": "s", "text": "t"})

    result = run(
        lambda c: ses(c, "", configuration_set="tx").send(message, timeout_s=5), recorder.client()
    )

    assert result.message_id == "0100018c-abcd"
    (request,) = recorder.requests
    assert request.method == "POST"
    assert str(request.url) == f"https://email.{REGION}.amazonaws.com/v2/email/outbound-emails"
    assert f"/{REGION}/ses/aws4_request" in request.headers["Authorization"]
    body = json.loads(request.content)
    assert body["FromEmailAddress"] == "Acme <noreply@acme.example>"
    assert body["Destination"] == {"ToAddresses": ["ann@example.org"]}
    assert body["ConfigurationSetName"] == "tx"
    assert set(body["Content"]) == {"Raw"}


@pytest.mark.parametrize(
    ("status", "code", "message", "outcome", "suppress", "auth_failed"),
    [
        (
            400,
            "MessageRejected",
            "Email address is not verified. The following identities failed the check in region EU-WEST-1: noreply@acme.example",
            Outcome.REJECTED_PERMANENT,
            False,
            False,
        ),
        (400, "MessageRejected", "Address blacklisted.", Outcome.REJECTED_PERMANENT, True, False),
        (
            400,
            "MailFromDomainNotVerifiedException",
            "MAIL FROM domain not verified",
            Outcome.REJECTED_PERMANENT,
            False,
            False,
        ),
        (
            400,
            "AccountSuspendedException",
            "Sending is suspended for this account",
            Outcome.REJECTED_TRANSIENT,
            False,
            False,
        ),
        (
            400,
            "SendingPausedException",
            "Sending is paused for this configuration set",
            Outcome.REJECTED_TRANSIENT,
            False,
            False,
        ),
        (
            429,
            "TooManyRequestsException",
            "Too many requests",
            Outcome.REJECTED_TRANSIENT,
            False,
            False,
        ),
        (
            400,
            "LimitExceededException",
            "Maximum sending rate exceeded",
            Outcome.REJECTED_TRANSIENT,
            False,
            False,
        ),
        (
            404,
            "NotFoundException",
            "Configuration set tx does not exist",
            Outcome.REJECTED_PERMANENT,
            False,
            False,
        ),
        (
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid",
            Outcome.REJECTED_TRANSIENT,
            False,
            True,
        ),
        (500, "InternalFailure", "", Outcome.REJECTED_TRANSIENT, False, False),
    ],
)
def test_ses_documented_errors(
    make_message, allow_hosts, status, code, message, outcome, suppress, auth_failed
) -> None:
    allow_hosts("ses.example")
    recorder = Recorder(
        httpx.Response(
            status,
            headers={
                "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.coral.service/"
            },
            json={"message": message},
        )
    )
    message_ = make_message({"to": "ann@example.org", "subject": "s", "text": "t"})
    result = run(
        lambda c: ses(c, "https://ses.example").send(message_, timeout_s=5), recorder.client()
    )
    assert (result.outcome, result.suppress_recipient, result.auth_failed) == (
        outcome,
        suppress,
        auth_failed,
    )
    assert result.provider_code == code


def test_ses_probe_reads_the_account(allow_hosts) -> None:
    allow_hosts("ses.example")
    recorder = Recorder(
        httpx.Response(
            200,
            json={
                "DedicatedIpAutoWarmupEnabled": False,
                "EnforcementStatus": "HEALTHY",
                "ProductionAccessEnabled": True,
                "SendQuota": {
                    "Max24HourSend": 50000.0,
                    "MaxSendRate": 14.0,
                    "SentLast24Hours": 12.0,
                },
                "SendingEnabled": True,
            },
        )
    )
    probe = run(lambda c: ses(c, "https://ses.example").probe(timeout_s=5), recorder.client())
    assert probe.ok
    assert "50000" in probe.detail
    (request,) = recorder.requests
    assert (request.method, request.url.path) == ("GET", "/v2/email/account")


def test_ses_secret_never_in_an_error(make_message, allow_hosts) -> None:
    allow_hosts("ses.example")
    recorder = Recorder(httpx.Response(500, text=f"echo {SECRET_KEY}"))
    message = make_message({"to": "ann@example.org", "subject": "s", "text": "t"})
    result = run(
        lambda c: ses(c, "https://ses.example").send(message, timeout_s=5), recorder.client()
    )
    assert SECRET_KEY not in result.error


@pytest.fixture
def aws_environment(monkeypatch, tmp_path):
    """botocore's default chain limited to the environment: no files, no metadata calls."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    return monkeypatch


def chain_only(client, endpoint: str) -> SnsProvider:
    return SnsProvider(
        config=connection("sns", "sms", settings={"region": REGION, "endpoint_url": endpoint}),
        client=client,
        secrets=DictSecrets({}),
    )


def test_sns_without_secrets_uses_the_default_chain(moto, aws_environment, make_message) -> None:
    aws_environment.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    aws_environment.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    message = make_message({"to": "+447700900124", "text": "from the chain"})

    result = run(lambda c: chain_only(c, moto).send(message, timeout_s=5), new_http_client())

    assert result.outcome is Outcome.ACCEPTED, result.error
    stored = sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages
    assert list(stored.values()) == [("+447700900124", "from the chain")]


def test_no_credentials_anywhere_is_our_error(aws_environment, allow_hosts, make_message) -> None:
    allow_hosts("sns.example")
    recorder = Recorder(httpx.Response(200))
    result = run(
        lambda c: chain_only(c, "https://sns.example").send(make_message(), timeout_s=5),
        recorder.client(),
    )
    assert result.outcome is Outcome.EXECUTOR_ERROR
    assert "no AWS credentials" in result.error
    assert recorder.requests == []


def test_sns_unknown_sms_type_is_our_error(allow_hosts, make_message) -> None:
    allow_hosts("sns.example")
    recorder = Recorder(httpx.Response(200))
    result = run(
        lambda c: sns(c, "https://sns.example", sms_type="Urgent").send(
            make_message(), timeout_s=5
        ),
        recorder.client(),
    )
    assert result.outcome is Outcome.EXECUTOR_ERROR
    assert "Transactional" in result.error
    assert recorder.requests == []
