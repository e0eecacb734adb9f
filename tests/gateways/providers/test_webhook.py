"""The webhook provider: what it posts, and its signatures checked by the
``standardwebhooks`` reference verifier (written independently of ours)."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gateways.base import Outcome
from gateways.providers import provider_class
from gateways.providers.webhook import WebhookProvider

from ..conftest import Recorder
from .conftest import DictSecrets, connection, run

SECRET = "whsec_" + base64.b64encode(b"a 24-byte signing secret").decode()
URL = "https://hooks.customer.example/in"


@pytest.fixture(autouse=True)
def _allowed(allow_hosts) -> None:
    allow_hosts("hooks.customer.example")


def provider(client, *, signed: bool = True, secret: str = SECRET, **settings):
    return WebhookProvider(
        config=connection(
            "webhook",
            "http",
            settings={"url": URL, **settings},
            secrets={"signing_secret": "file:/run/secrets/whsec"} if signed else {},
        ),
        client=client,
        secrets=DictSecrets({"file:/run/secrets/whsec": secret}),
    )


def send(recorder: Recorder, message, **kwargs):
    return run(lambda c: provider(c, **kwargs).send(message, timeout_s=2), recorder.client())


def test_registered() -> None:
    assert provider_class("webhook") is WebhookProvider


def test_signature_verifies_with_the_reference_verifier(make_message) -> None:
    recorder = Recorder(httpx.Response(200, json={"id": "rcv-9"}))
    payload = {"event": "order.paid", "order": {"id": 17, "note": "café"}}
    message = make_message(payload, key="intent-abc")

    result = send(recorder, message, headers={"Authorization": "Bearer t0k", "X-Tenant": "acme"})

    assert result.outcome is Outcome.ACCEPTED
    assert result.message_id == "rcv-9"
    (request,) = recorder.requests
    assert request.method == "POST"
    assert str(request.url) == URL
    assert request.headers["webhook-id"] == "intent-abc"
    assert request.headers["Idempotency-Key"] == "intent-abc"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Bearer t0k"
    assert request.headers["X-Tenant"] == "acme"
    assert json.loads(request.content) == payload
    verified = Webhook(SECRET).verify(request.content, dict(request.headers))
    assert verified == payload


def test_tampered_body_fails_the_reference_verifier(make_message) -> None:
    recorder = Recorder(httpx.Response(204))
    send(recorder, make_message({"amount": 10}))
    (request,) = recorder.requests
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(b'{"amount":1000}', dict(request.headers))


def test_configured_headers_cannot_forge_the_signature(make_message) -> None:
    recorder = Recorder(httpx.Response(204))
    send(recorder, make_message({"a": 1}), headers={"webhook-signature": "v1,forged"})
    (request,) = recorder.requests
    assert request.headers["webhook-signature"] != "v1,forged"
    Webhook(SECRET).verify(request.content, dict(request.headers))


def test_unsigned_without_a_secret(make_message) -> None:
    recorder = Recorder(httpx.Response(202))
    result = send(recorder, make_message({"a": 1}), signed=False)
    assert result.outcome is Outcome.ACCEPTED
    (request,) = recorder.requests
    assert "webhook-signature" not in request.headers
    assert request.headers["webhook-id"]


@pytest.mark.parametrize(
    ("status", "outcome", "auth_failed"),
    [
        (410, Outcome.REJECTED_PERMANENT, False),
        (400, Outcome.REJECTED_PERMANENT, False),
        (401, Outcome.REJECTED_TRANSIENT, True),
        (429, Outcome.REJECTED_TRANSIENT, False),
        (503, Outcome.REJECTED_TRANSIENT, False),
        (302, Outcome.EXECUTOR_ERROR, False),
    ],
)
def test_status_classification(make_message, status, outcome, auth_failed) -> None:
    result = send(Recorder(httpx.Response(status, headers={"Retry-After": "2"})), make_message({}))
    assert (result.outcome, result.auth_failed) == (outcome, auth_failed)
    assert not result.suppress_recipient
    assert result.retry_after_s == (2.0 if status in (429, 503) else None)


def test_bad_secret_is_our_error_and_not_echoed(make_message) -> None:
    result = send(Recorder(httpx.Response(200)), make_message({}), secret="whsec_not*base64")
    assert result.outcome is Outcome.EXECUTOR_ERROR
    assert "not*base64" not in result.error


def test_url_outside_the_allow_list(make_message) -> None:
    recorder = Recorder(httpx.Response(200))
    result = send(recorder, make_message({}), url="https://10.0.0.1/in")
    assert result.outcome is Outcome.EXECUTOR_ERROR
    assert recorder.requests == []


def test_probe_sends_no_body() -> None:
    recorder = Recorder(httpx.Response(405))
    probe = run(lambda c: provider(c).probe(timeout_s=2), recorder.client())
    assert probe.ok
    (request,) = recorder.requests
    assert request.method == "HEAD"
    assert request.content == b""


def test_probe_fails_on_server_error() -> None:
    probe = run(lambda c: provider(c).probe(timeout_s=2), Recorder(httpx.Response(502)).client())
    assert not probe.ok


def test_two_secrets_sign_side_by_side_during_a_rotation(make_message) -> None:
    new = "whsec_" + base64.b64encode(b"the new signing secret!!").decode()
    recorder = Recorder(httpx.Response(204))
    send(recorder, make_message({"a": 1}), secret=f"{new} {SECRET}")
    (request,) = recorder.requests
    assert request.headers["webhook-signature"].count("v1,") == 2
    for secret in (new, SECRET):  # a receiver holding either secret verifies it
        Webhook(secret).verify(request.content, dict(request.headers))
