"""Each adapter against httpx.MockTransport: what it sends and how it reads answers."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from gateways.adapters.http import HttpGateway
from gateways.adapters.push import PushGateway
from gateways.adapters.sms import SmsGateway
from gateways.base import GatewayMessage, Outcome

from .conftest import Recorder


@pytest.fixture(autouse=True)
def _urls(settings) -> None:
    settings.GATEWAY_SMS_URL = "https://sms.example/v1/send"
    settings.GATEWAY_PUSH_URL = "https://push.example/v1/push"
    settings.GATEWAY_HTTP_URL = "https://hooks.example/in"
    settings.GATEWAY_ALLOWED_HOSTS = ["sms.example", "push.example", "hooks.example"]


def send(adapter_class, recorder: Recorder, message: GatewayMessage, timeout_s: float = 2.0):
    async def scenario():
        async with recorder.client() as client:
            return await adapter_class(client=client).send(message, timeout_s=timeout_s)

    return asyncio.run(scenario())


ACCEPTED = httpx.Response(202, json={"message_id": "gw-1"})


@pytest.mark.parametrize(
    ("adapter_class", "url", "payload", "body"),
    [
        (
            SmsGateway,
            "https://sms.example/v1/send",
            {"to": "+15550100001", "text": "code 1", "sender": "ACME"},
            {"to": "+15550100001", "text": "code 1", "sender": "ACME"},
        ),
        (
            PushGateway,
            "https://push.example/v1/push",
            {"token": "tok-1", "title": "Hi", "data": {"k": 1}},
            {"token": "tok-1", "title": "Hi", "data": {"k": 1}},
        ),
        (
            HttpGateway,
            "https://hooks.example/in",
            {"event": "order.paid", "order": {"id": 17}},
            {"event": "order.paid", "order": {"id": 17}},
        ),
    ],
)
def test_adapter_posts_json_with_idempotency_and_request_id(
    adapter_class, url, payload, body
) -> None:
    recorder = Recorder(ACCEPTED)
    message = GatewayMessage(idempotency_key="3f1c-key", correlation_id="req-9", payload=payload)

    result = send(adapter_class, recorder, message)

    assert result.outcome is Outcome.ACCEPTED
    assert result.status_code == 202
    assert result.message_id == "gw-1"
    assert result.error == ""
    (request,) = recorder.requests
    assert request.method == "POST"
    assert str(request.url) == url
    assert request.headers["Idempotency-Key"] == "3f1c-key"
    assert request.headers["X-Request-ID"] == "req-9"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == body


def test_sms_body_leads_with_to_and_text(make_message) -> None:
    recorder = Recorder(ACCEPTED)
    send(SmsGateway, recorder, make_message({"text": "t", "ref": 1, "to": "+15550100009"}))
    assert list(json.loads(recorder.requests[0].content)) == ["to", "text", "ref"]


def test_missing_correlation_id_falls_back_to_the_idempotency_key() -> None:
    recorder = Recorder(ACCEPTED)
    send(HttpGateway, recorder, GatewayMessage("key-1", "", {"a": 1}))
    assert recorder.requests[0].headers["X-Request-ID"] == "key-1"


@pytest.mark.parametrize(
    ("response", "message_id"),
    [
        (httpx.Response(202, json={"message_id": "from-field"}), "from-field"),
        (httpx.Response(200, json={"id": 12345}), "12345"),
        (httpx.Response(202, json={"message_id": "a", "id": "b"}), "a"),
        (httpx.Response(202, json={"status": "ok"}, headers={"X-Message-ID": "hdr"}), "hdr"),
        (httpx.Response(202, text="accepted", headers={"X-Message-ID": "hdr2"}), "hdr2"),
        (httpx.Response(202, json=["not", "an", "object"]), ""),
        (httpx.Response(202, json={"id": True}), ""),
        (httpx.Response(204), ""),
    ],
)
def test_message_id_parsing(response: httpx.Response, message_id: str, make_message) -> None:
    result = send(SmsGateway, Recorder(response), make_message())
    assert result.outcome is Outcome.ACCEPTED
    assert result.message_id == message_id


@pytest.mark.parametrize(
    ("response", "outcome", "retry_after", "error"),
    [
        (
            httpx.Response(400, json={"error": "bad number"}),
            Outcome.REJECTED_PERMANENT,
            None,
            'HTTP 400: {"error":"bad number"}',
        ),
        (
            httpx.Response(503, headers={"Retry-After": "7"}),
            Outcome.REJECTED_TRANSIENT,
            7.0,
            "HTTP 503",
        ),
        (
            httpx.Response(429, text="slow down", headers={"Retry-After": "2"}),
            Outcome.REJECTED_TRANSIENT,
            2.0,
            "HTTP 429: slow down",
        ),
        (
            httpx.Response(500, text="boom", headers={"Retry-After": "2"}),
            Outcome.REJECTED_TRANSIENT,
            None,
            "HTTP 500: boom",
        ),
        (
            httpx.Response(301, headers={"Location": "https://elsewhere.example/"}),
            Outcome.EXECUTOR_ERROR,
            None,
            "HTTP 301: redirect not followed",
        ),
    ],
)
def test_non_2xx_answers(response, outcome, retry_after, error, make_message) -> None:
    recorder = Recorder(response)
    result = send(SmsGateway, recorder, make_message())
    assert result.outcome is outcome
    assert result.status_code == response.status_code
    assert result.retry_after_s == retry_after
    assert result.error.startswith(error)
    assert len(recorder.requests) == 1  # a redirect is not followed


def test_huge_error_body_is_cut_short(make_message) -> None:
    result = send(SmsGateway, Recorder(httpx.Response(502, text="x" * 1_000_000)), make_message())
    assert result.outcome is Outcome.REJECTED_TRANSIENT
    assert len(result.error) <= 140


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (httpx.ConnectError("connection refused"), Outcome.REJECTED_TRANSIENT),
        (httpx.ReadError("connection reset"), Outcome.REJECTED_TRANSIENT),
        (httpx.RemoteProtocolError("server hung up"), Outcome.REJECTED_TRANSIENT),
        (httpx.ReadTimeout("read timed out"), Outcome.TIMEOUT),
        (httpx.ConnectTimeout("connect timed out"), Outcome.TIMEOUT),
        (httpx.LocalProtocolError("bad header"), Outcome.EXECUTOR_ERROR),
        (RuntimeError("adapter bug"), Outcome.EXECUTOR_ERROR),
    ],
)
def test_transport_failures(exc: Exception, outcome: Outcome, make_message) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc

    result = send(SmsGateway, Recorder(fail), make_message())
    assert result.outcome is outcome
    assert result.status_code is None
    assert result.message_id == ""


def test_executor_error_is_short_and_names_the_exception(make_message) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise ValueError("y" * 5000)

    result = send(HttpGateway, Recorder(fail), make_message({"secret": "s3cr3t"}))
    assert result.outcome is Outcome.EXECUTOR_ERROR
    assert result.error.startswith("ValueError: yyy")
    assert len(result.error) <= 200


@pytest.mark.parametrize(
    ("adapter_class", "payload", "error"),
    [
        (SmsGateway, {"text": "code 424242"}, "sms payload lacks to"),
        (SmsGateway, {"to": "+15550100001"}, "sms payload lacks text"),
        (PushGateway, {"title": "code 424242"}, "push payload has no 'token'"),
    ],
)
def test_payload_mismatch_is_an_executor_error_without_the_payload(
    adapter_class, payload, error, make_message
) -> None:
    recorder = Recorder(ACCEPTED)
    result = send(adapter_class, recorder, make_message(payload))
    assert result.outcome is Outcome.EXECUTOR_ERROR
    assert error in result.error
    assert "424242" not in result.error
    assert recorder.requests == []


def test_hard_timeout_bounds_a_request_httpx_would_wait_on(make_message) -> None:
    # MockTransport ignores httpx's own timeouts: only the adapter's hard bound ends this.
    async def never_answers(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    started = time.monotonic()
    result = send(SmsGateway, Recorder(never_answers), make_message(), timeout_s=0.2)
    elapsed = time.monotonic() - started

    assert result.outcome is Outcome.TIMEOUT
    assert result.error == "no answer within 0.2 s"
    assert 0.2 <= elapsed < 2.0


def test_adapter_without_a_client_owns_and_closes_its_own(settings, make_message) -> None:
    async def scenario():
        gateway = SmsGateway(url="https://elsewhere.example/sms")
        result = await gateway.send(make_message(), timeout_s=1)  # refused: no network used
        await gateway.aclose()
        return gateway, result

    gateway, result = asyncio.run(scenario())
    assert result.outcome is Outcome.EXECUTOR_ERROR
    assert gateway._client.is_closed
