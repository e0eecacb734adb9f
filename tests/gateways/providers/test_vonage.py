"""Vonage SMS API against the answers its documentation shows (status codes in the body)."""

from __future__ import annotations

from urllib.parse import parse_qs

import httpx
import pytest

from gateways.base import Outcome
from gateways.providers import provider_class
from gateways.providers.vonage import VonageProvider

from ..conftest import Recorder
from .conftest import DictSecrets, connection, run

API_KEY, API_SECRET = "abcd1234", "Zx9yW8vU7tS6rQ5p"

# The documented answer of an accepted message.
ACCEPTED = {
    "message-count": "1",
    "messages": [
        {
            "to": "447700900000",
            "message-id": "0C000000217B7F02",
            "status": "0",
            "remaining-balance": "15.53590000",
            "message-price": "0.03330000",
            "network": "23410",
        }
    ],
}


def refused(status: str, text: str) -> dict:
    return {"message-count": "1", "messages": [{"status": status, "error-text": text}]}


@pytest.fixture(autouse=True)
def _allowed(allow_hosts) -> None:
    allow_hosts("rest.nexmo.com")


def provider(client, secrets=None, **settings) -> VonageProvider:
    return VonageProvider(
        config=connection(
            "vonage",
            "sms",
            settings={"from": "AcmeInc", **settings},
            secrets={"api_key": "env:VONAGE_KEY", "api_secret": "env:VONAGE_SECRET"},
        ),
        client=client,
        secrets=secrets
        or DictSecrets({"env:VONAGE_KEY": API_KEY, "env:VONAGE_SECRET": API_SECRET}),
    )


def send(recorder, message, secrets=None):
    return run(lambda c: provider(c, secrets).send(message, timeout_s=2), recorder.client())


def test_registered() -> None:
    assert provider_class("vonage") is VonageProvider


def test_sends_the_documented_form(make_message) -> None:
    recorder = Recorder(httpx.Response(200, json=ACCEPTED))
    result = send(
        recorder, make_message({"to": "+447700900000", "text": "A text message"}, key="k-1")
    )

    assert result.outcome is Outcome.ACCEPTED
    assert result.message_id == "0C000000217B7F02"
    (request,) = recorder.requests
    assert request.method == "POST"
    assert str(request.url) == "https://rest.nexmo.com/sms/json"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {
        "api_key": [API_KEY],
        "api_secret": [API_SECRET],
        "from": ["AcmeInc"],
        "to": ["447700900000"],
        "text": ["A text message"],
        "client-ref": ["k-1"],
    }


def test_non_ascii_text_is_sent_as_unicode(make_message) -> None:
    recorder = Recorder(httpx.Response(200, json=ACCEPTED))
    send(recorder, make_message({"to": "+447700900000", "text": "Код 1234"}))
    assert parse_qs(recorder.requests[0].content.decode())["type"] == ["unicode"]


@pytest.mark.parametrize(
    ("status", "text", "outcome", "suppress", "auth_failed"),
    [
        (
            "1",
            "Throughput Rate Exceeded - please wait [ 30 ] and retry",
            Outcome.REJECTED_TRANSIENT,
            False,
            False,
        ),
        ("2", "Missing to param", Outcome.REJECTED_PERMANENT, False, False),
        ("3", "Invalid to param", Outcome.REJECTED_PERMANENT, False, False),
        ("4", "Bad Credentials", Outcome.REJECTED_TRANSIENT, False, True),
        ("5", "Internal Error", Outcome.REJECTED_TRANSIENT, False, False),
        ("6", "Unroutable message - rejected", Outcome.REJECTED_PERMANENT, False, False),
        ("7", "Number barred.", Outcome.REJECTED_PERMANENT, True, False),
        ("9", "Quota Exceeded - rejected", Outcome.REJECTED_TRANSIENT, False, False),
        ("15", "Illegal Sender Address - rejected", Outcome.REJECTED_PERMANENT, False, False),
        ("29", "Non White-listed Destination - rejected", Outcome.REJECTED_PERMANENT, False, False),
        ("33", "Number de-activated", Outcome.REJECTED_PERMANENT, True, False),
        ("99", "A status documented later", Outcome.REJECTED_PERMANENT, False, False),
    ],
)
def test_documented_status_codes_in_a_200(
    make_message, status, text, outcome, suppress, auth_failed
) -> None:
    secrets = DictSecrets({"env:VONAGE_KEY": API_KEY, "env:VONAGE_SECRET": API_SECRET})
    result = send(
        Recorder(httpx.Response(200, json=refused(status, text))), make_message(), secrets
    )

    assert (result.outcome, result.suppress_recipient, result.auth_failed) == (
        outcome,
        suppress,
        auth_failed,
    )
    assert result.provider_code == status
    assert text[:20] in result.error
    assert (secrets.invalidated != []) == auth_failed


def test_a_refused_second_part_refuses_the_message(make_message) -> None:
    body = {
        "message-count": "2",
        "messages": [ACCEPTED["messages"][0], {"status": "7", "error-text": "Number barred."}],
    }
    result = send(Recorder(httpx.Response(200, json=body)), make_message())
    assert result.outcome is Outcome.REJECTED_PERMANENT
    assert result.suppress_recipient


def test_an_answer_without_parts_is_transient(make_message) -> None:
    result = send(Recorder(httpx.Response(200, text="<html>maintenance</html>")), make_message())
    assert result.outcome is Outcome.REJECTED_TRANSIENT


def test_http_errors_by_status(make_message) -> None:
    assert send(Recorder(httpx.Response(503)), make_message()).outcome is Outcome.REJECTED_TRANSIENT


def test_probe_reads_the_balance() -> None:
    recorder = Recorder(httpx.Response(200, json={"value": 10.28, "autoReload": False}))
    probe = run(lambda c: provider(c).probe(timeout_s=2), recorder.client())
    assert probe.ok
    assert "10.28" in probe.detail
    (request,) = recorder.requests
    assert request.method == "GET"
    assert request.url.path == "/account/get-balance"
    assert dict(request.url.params) == {"api_key": API_KEY, "api_secret": API_SECRET}


def test_probe_failure_hides_the_secret() -> None:
    recorder = Recorder(httpx.Response(401, text=f"bad secret {API_SECRET}"))
    probe = run(lambda c: provider(c).probe(timeout_s=2), recorder.client())
    assert not probe.ok
    assert API_SECRET not in probe.detail


def test_callback_asks_for_receipts(make_message) -> None:
    recorder = Recorder(httpx.Response(200, json=ACCEPTED))
    run(
        lambda c: provider(c, callback="https://portal.example/hooks/receipts/vonage-main").send(
            make_message(), timeout_s=2
        ),
        recorder.client(),
    )
    form = parse_qs(recorder.requests[0].content.decode())
    assert form["callback"] == ["https://portal.example/hooks/receipts/vonage-main"]
