"""Twilio against fixtures copied from its documentation (no local emulator exists)."""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import parse_qs

import httpx
import pytest

from gateways.base import Outcome
from gateways.providers import provider_class
from gateways.providers.twilio import TwilioProvider

from ..conftest import Recorder
from .conftest import DictSecrets, connection, run

SID = "ACa66dd367e3772ec8696f298dd7e528a5"
TOKEN = "f0e1d2c3b4a5968778695a4b3c2d1e0f"
MESSAGES_URL = f"https://api.twilio.com/2010-04-01/Accounts/{SID}/Messages.json"

# The documented 201 answer of "create a Message" (trimmed to the fields we read and a few).
CREATED = {
    "sid": "SM304417148af644198a0efaceebc965a5",
    "account_sid": SID,
    "to": "+15145535858",
    "from": "+15149002890",
    "body": "test A",
    "status": "queued",
    "num_segments": "1",
    "direction": "outbound-api",
    "api_version": "2010-04-01",
    "error_code": None,
    "error_message": None,
    "uri": f"/2010-04-01/Accounts/{SID}/Messages/SM304417148af644198a0efaceebc965a5.json",
}


def twilio_error(code: int, message: str, status: int = 400) -> dict:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


@pytest.fixture(autouse=True)
def _allowed(allow_hosts) -> None:
    allow_hosts("api.twilio.com")


def provider(client: httpx.AsyncClient, secrets: DictSecrets | None = None, **settings):
    return TwilioProvider(
        config=connection(
            "twilio",
            "sms",
            settings={"account_sid": SID, "from": "+15149002890", **settings},
            secrets={"auth_token": "env:TWILIO_AUTH_TOKEN"},
        ),
        client=client,
        secrets=secrets or DictSecrets({"env:TWILIO_AUTH_TOKEN": TOKEN}),
    )


def send(recorder: Recorder, message, secrets=None, timeout_s=2.0, **settings):
    return run(
        lambda c: provider(c, secrets, **settings).send(message, timeout_s=timeout_s),
        recorder.client(),
    )


def test_registered() -> None:
    assert provider_class("twilio") is TwilioProvider


def test_sends_the_documented_form_with_basic_auth(make_message) -> None:
    recorder = Recorder(httpx.Response(201, json=CREATED))
    message = make_message({"to": "+15145535858", "text": "test A"})

    result = send(recorder, message)

    assert result.outcome is Outcome.ACCEPTED
    assert result.message_id == "SM304417148af644198a0efaceebc965a5"
    (request,) = recorder.requests
    assert request.method == "POST"
    assert str(request.url) == MESSAGES_URL
    expected_auth = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected_auth}"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {
        "To": ["+15145535858"],
        "Body": ["test A"],
        "From": ["+15149002890"],
    }


def test_payload_from_wins_and_messaging_service_is_the_fallback(make_message) -> None:
    recorder = Recorder(httpx.Response(201, json=CREATED))
    send(recorder, make_message({"to": "+15145535858", "text": "x", "from": "ACME"}))
    send(
        recorder,
        make_message({"to": "+15145535858", "text": "x"}),
        **{"from": "", "messaging_service_sid": "MG9752274e9e519418a7406176694466fa"},
    )
    first, second = (parse_qs(r.content.decode()) for r in recorder.requests)
    assert first["From"] == ["ACME"]
    assert second["MessagingServiceSid"] == ["MG9752274e9e519418a7406176694466fa"]
    assert "From" not in second


@pytest.mark.parametrize(
    ("status", "code", "message", "outcome", "suppress"),
    [
        (
            400,
            21211,
            "The 'To' number +15005550001 is not a valid phone number.",
            Outcome.REJECTED_PERMANENT,
            True,
        ),
        (400, 21610, "Attempt to send to unsubscribed recipient", Outcome.REJECTED_PERMANENT, True),
        (400, 21614, "'To' number is not a valid mobile number", Outcome.REJECTED_PERMANENT, True),
        (
            400,
            21612,
            "The 'To' phone number is not currently reachable via SMS",
            Outcome.REJECTED_PERMANENT,
            True,
        ),
        (
            400,
            21408,
            "Permission to send an SMS has not been enabled for the region indicated by the 'To' number",
            Outcome.REJECTED_PERMANENT,
            False,
        ),
        (
            400,
            21606,
            "The 'From' phone number provided is not a valid message-capable Twilio phone number",
            Outcome.REJECTED_PERMANENT,
            False,
        ),
        (429, 20429, "Too Many Requests", Outcome.REJECTED_TRANSIENT, False),
        (400, 30001, "Queue overflow", Outcome.REJECTED_TRANSIENT, False),
        (400, 99999, "An error Twilio documents later", Outcome.REJECTED_PERMANENT, False),
        (503, 20503, "Service unavailable", Outcome.REJECTED_TRANSIENT, False),
    ],
)
def test_documented_error_codes(make_message, status, code, message, outcome, suppress) -> None:
    recorder = Recorder(httpx.Response(status, json=twilio_error(code, message, status)))

    result = send(recorder, make_message())

    assert (result.outcome, result.suppress_recipient) == (outcome, suppress)
    assert result.provider_code == str(code)
    assert result.status_code == status
    assert str(code) in result.error
    assert not result.auth_failed


def test_authentication_error_is_transient_and_rereads_the_secret(make_message) -> None:
    secrets = DictSecrets({"env:TWILIO_AUTH_TOKEN": TOKEN})
    recorder = Recorder(httpx.Response(401, json=twilio_error(20003, "Authenticate", 401)))

    result = send(recorder, make_message(), secrets)

    assert result.outcome is Outcome.REJECTED_TRANSIENT
    assert result.auth_failed
    assert secrets.invalidated == ["env:TWILIO_AUTH_TOKEN"]


def test_rate_limit_keeps_retry_after(make_message) -> None:
    recorder = Recorder(
        httpx.Response(
            429, headers={"Retry-After": "3"}, json=twilio_error(20429, "Too Many Requests", 429)
        )
    )
    result = send(recorder, make_message())
    assert result.retry_after_s == 3.0


def test_host_outside_the_allow_list_is_never_called(make_message) -> None:
    recorder = Recorder(httpx.Response(201, json=CREATED))
    result = send(recorder, make_message(), endpoint_url="https://evil.example")
    assert result.outcome is Outcome.EXECUTOR_ERROR
    assert "GATEWAY_ALLOWED_HOSTS" in result.error
    assert recorder.requests == []


def test_missing_payload_field_is_our_error(make_message) -> None:
    result = send(Recorder(httpx.Response(201, json=CREATED)), make_message({"to": "+15145535858"}))
    assert result.outcome is Outcome.EXECUTOR_ERROR
    assert "text" in result.error


def test_hard_timeout(make_message) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(201, json=CREATED)

    result = send(Recorder(slow), make_message(), timeout_s=0.05)
    assert result.outcome is Outcome.TIMEOUT


def test_a_secret_echoed_by_the_provider_never_reaches_the_error(make_message) -> None:
    recorder = Recorder(httpx.Response(500, text=f"internal error for token {TOKEN}"))
    result = send(recorder, make_message())
    assert result.outcome is Outcome.REJECTED_TRANSIENT
    assert TOKEN not in result.error
    assert "[redacted]" in result.error


def test_probe_reads_the_account(make_message) -> None:
    recorder = Recorder(httpx.Response(200, json={"sid": SID, "status": "active"}))
    probe = run(lambda c: provider(c).probe(timeout_s=2), recorder.client())
    assert probe.ok
    assert "active" in probe.detail
    (request,) = recorder.requests
    assert request.method == "GET"
    assert str(request.url) == f"https://api.twilio.com/2010-04-01/Accounts/{SID}.json"


def test_probe_refused_credentials() -> None:
    secrets = DictSecrets({"env:TWILIO_AUTH_TOKEN": TOKEN})
    recorder = Recorder(httpx.Response(401, json=twilio_error(20003, "Authenticate", 401)))
    probe = run(lambda c: provider(c, secrets).probe(timeout_s=2), recorder.client())
    assert not probe.ok
    assert "401" in probe.detail
    assert secrets.invalidated == ["env:TWILIO_AUTH_TOKEN"]


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), Outcome.REJECTED_TRANSIENT),
        (
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            Outcome.TIMEOUT,
        ),
        (httpx.ReadError("[Errno 104] Connection reset by peer"), Outcome.TIMEOUT),
    ],
)
def test_a_lost_connection_after_the_request_left_is_an_unknown_outcome(
    make_message, error, outcome
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    result = send(Recorder(fail), make_message())
    assert result.outcome is outcome


def test_status_callback_asks_for_receipts(make_message) -> None:
    recorder = Recorder(httpx.Response(201, json=CREATED))
    send(
        recorder,
        make_message(),
        status_callback="https://portal.example/hooks/receipts/twilio-main",
    )
    form = parse_qs(recorder.requests[0].content.decode())
    assert form["StatusCallback"] == ["https://portal.example/hooks/receipts/twilio-main"]
