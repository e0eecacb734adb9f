"""Status lookup by idempotency key: the simulator's ``GET /<gateway>/status/<key>`` and
the HTTP adapters' ``query_status``, which reconciliation uses after a timeout."""

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
from gateways.simulator import GatewaySimulator, start_simulator_in_thread

from .conftest import Recorder

KEY = "6f1c2d7e-0000-4000-8000-000000000001"


def post(sim: GatewaySimulator, to: str, key: str, path: str = "/sms"):
    field = "token" if path == "/push" else "to"
    body = json.dumps({field: to, "text": "x"}).encode()
    return sim.decide(path, {"Idempotency-Key": key}, body)


def lookup(sim: GatewaySimulator, key: str, path: str = "/sms", method: str = "GET"):
    return sim.handle(method, f"{path}/status/{key}", {}, b"")


# --- the simulator's rules, no network


def test_an_accepted_key_is_reported_with_its_message_id() -> None:
    sim = GatewaySimulator()
    accepted = post(sim, "+15550100001", KEY)
    response = lookup(sim, KEY)
    assert response.status == 200
    assert response.body == {
        "idempotency_key": KEY,
        "status": "accepted",
        "message_id": accepted.body["message_id"],
    }
    assert response.headers["X-Message-ID"] == accepted.body["message_id"]


@pytest.mark.parametrize(
    "to",
    [
        "+15550100400",  # rejected for good
        "+15550100503",  # unavailable
        "+15550100429",  # rate limited
        "+15550100504",  # held: the client gave up, nothing was accepted
        "+15550100202",  # the first two requests of 0020N fail
    ],
)
def test_a_key_never_accepted_is_unknown(to: str) -> None:
    sim = GatewaySimulator()
    assert post(sim, to, KEY).status != 202
    response = lookup(sim, KEY)
    assert (response.status, response.body) == (404, {"status": "unknown"})
    assert (lookup(sim, "never-sent").status, lookup(sim, "never-sent").body) == (
        404,
        {"status": "unknown"},
    )


def test_0020n_key_becomes_known_once_accepted() -> None:
    sim = GatewaySimulator()
    assert post(sim, "+15550100201", KEY).status == 503
    assert lookup(sim, KEY).status == 404
    second = post(sim, "+15550100201", KEY)
    assert second.status == 202
    assert lookup(sim, KEY).body["message_id"] == second.body["message_id"]


def test_the_three_paths_share_one_key_space_like_their_posts() -> None:
    sim = GatewaySimulator()
    message_id = post(sim, "device-1", KEY, path="/push").body["message_id"]
    assert [lookup(sim, KEY, path).body["message_id"] for path in ("/sms", "/push", "/http")] == [
        message_id
    ] * 3
    assert post(sim, "+15550100001", KEY, path="/sms").body["duplicate"] is True


def test_lookups_are_not_recorded_and_survive_clearing_the_list() -> None:
    sim = GatewaySimulator()
    post(sim, "+15550100001", KEY)
    before = sim.messages()
    lookup(sim, KEY)
    lookup(sim, "unknown")
    assert sim.messages() == before
    sim.clear_messages()
    assert lookup(sim, KEY).status == 200  # accepted keys are remembered
    assert sim.messages() == []


def test_a_percent_encoded_key_is_decoded() -> None:
    sim = GatewaySimulator()
    post(sim, "+15550100001", "tenant/a key")
    assert lookup(sim, "tenant%2Fa%20key").body["idempotency_key"] == "tenant/a key"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/sms/status/k", 405),
        ("DELETE", "/push/status/k", 405),
        ("GET", "/sms/status/", 404),  # no key: no such endpoint
        ("GET", "/fax/status/k", 404),
        ("GET", "/status/k", 404),
    ],
)
def test_bad_lookups_get_json_errors(method: str, path: str, status: int) -> None:
    response = GatewaySimulator().handle(method, path, {}, b"")
    assert response.status == status
    assert "error" in response.body


# --- the simulator over HTTP


def test_status_over_http_for_every_gateway_path(simulator) -> None:
    with httpx.Client(base_url=simulator.base_url, timeout=5, trust_env=False) as client:
        sent = client.post("/sms", json={"to": "+15550100001"}, headers={"Idempotency-Key": KEY})
        count = len(client.get("/messages").json())
        for path in ("/sms", "/push", "/http"):
            response = client.get(f"{path}/status/{KEY}")
            assert response.status_code == 200
            assert response.headers["Content-Type"] == "application/json"
            assert response.json() == {
                "idempotency_key": KEY,
                "status": "accepted",
                "message_id": sent.json()["message_id"],
            }
        unknown = client.get("/sms/status/nobody")
        assert (unknown.status_code, unknown.json()) == (404, {"status": "unknown"})
        assert len(client.get("/messages").json()) == count


# --- the adapters against the simulator


def query(adapter, key: str, timeout_s: float = 5.0, **kwargs):
    async def scenario():
        try:
            return await adapter.query_status(key, timeout_s=timeout_s, **kwargs)
        finally:
            await adapter.aclose()

    return asyncio.run(scenario())


def send(adapter, message: GatewayMessage):
    async def scenario():
        try:
            return await adapter.send(message, timeout_s=5)
        finally:
            await adapter.aclose()

    return asyncio.run(scenario())


@pytest.mark.parametrize(
    ("adapter_class", "payload"),
    [
        (SmsGateway, {"to": "+15550100001", "text": "hi"}),
        (PushGateway, {"token": "device-1", "title": "hi"}),
        (HttpGateway, {"event": "order.paid"}),
    ],
)
def test_adapter_confirms_what_the_simulator_accepted(
    simulator_settings, simulator, adapter_class, payload
) -> None:
    message = GatewayMessage(idempotency_key=KEY, correlation_id="corr-1", payload=payload)
    sent = send(adapter_class(), message)
    assert sent.outcome is Outcome.ACCEPTED

    result = query(adapter_class(), KEY)

    assert result is not None
    assert (result.outcome, result.status_code, result.message_id) == (
        Outcome.ACCEPTED,
        200,
        sent.message_id,
    )
    assert query(adapter_class(), "a-key-nobody-sent") is None


def test_adapter_reads_its_gateway_status_url_setting(settings) -> None:
    settings.GATEWAY_SMS_STATUS_URL = "http://127.0.0.1:9/sms/status"
    settings.GATEWAY_PUSH_STATUS_URL = "https://push.example/status"
    settings.GATEWAY_HTTP_STATUS_URL = ""
    assert SmsGateway().status_url == "http://127.0.0.1:9/sms/status"
    assert PushGateway().status_url == "https://push.example/status"
    assert (SmsGateway().can_query_status, HttpGateway().can_query_status) == (True, False)
    assert SmsGateway(status_url="https://other.example/s").status_url == "https://other.example/s"


def test_status_urls_default_to_the_local_simulator() -> None:
    from portal.settings import base

    assert (
        base.GATEWAY_SMS_STATUS_URL,
        base.GATEWAY_PUSH_STATUS_URL,
        base.GATEWAY_HTTP_STATUS_URL,
    ) == (
        "http://127.0.0.1:8025/sms/status",
        "http://127.0.0.1:8025/push/status",
        "http://127.0.0.1:8025/http/status",
    )


def test_unknown_key_after_a_timed_out_send(simulator_settings, simulator, make_message) -> None:
    held = make_message({"to": "+15550100504", "text": "hi"})

    async def scenario():
        gateway = SmsGateway()
        try:
            sent = await gateway.send(held, timeout_s=0.2)
            known = await gateway.query_status(held.idempotency_key, timeout_s=5)
        finally:
            await gateway.aclose()
        return sent, known

    sent, known = asyncio.run(scenario())
    assert sent.outcome is Outcome.TIMEOUT
    assert known is None
    assert [m["status"] for m in simulator.simulator.messages()] == [504]


def test_refused_host_makes_no_request(settings) -> None:
    settings.GATEWAY_ALLOWED_HOSTS = ["127.0.0.1"]
    recorder = Recorder(httpx.Response(200, json={"status": "accepted", "message_id": "m"}))
    adapter = SmsGateway(client=recorder.client(), status_url="https://evil.example/status")

    result = query(adapter, KEY)

    assert result is not None
    assert result.outcome is Outcome.EXECUTOR_ERROR
    assert "evil.example not in GATEWAY_ALLOWED_HOSTS" in result.error
    assert recorder.requests == []


def test_no_status_url_cannot_be_asked(settings) -> None:
    settings.GATEWAY_SMS_STATUS_URL = ""
    recorder = Recorder(httpx.Response(200))
    adapter = SmsGateway(client=recorder.client())
    assert adapter.can_query_status is False

    result = query(adapter, KEY)

    assert result is not None
    assert result.outcome is Outcome.EXECUTOR_ERROR
    assert "GATEWAY_SMS_STATUS_URL is empty" in result.error
    assert recorder.requests == []


def test_a_slow_gateway_is_cut_off_by_the_hard_timeout(settings) -> None:
    server, base_url = start_simulator_in_thread(latency_ms=5_000)
    settings.GATEWAY_ALLOWED_HOSTS = ["127.0.0.1"]
    try:
        started = time.monotonic()
        result = query(SmsGateway(status_url=f"{base_url}/sms/status"), KEY, timeout_s=0.2)
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    assert result is not None
    assert (result.outcome, result.error) == (Outcome.TIMEOUT, "no answer within 0.2 s")
    assert elapsed < 2


# --- what the adapter sends and how it reads answers (one mock transport)


def test_request_is_a_get_with_the_key_escaped_and_the_request_id(settings) -> None:
    settings.GATEWAY_ALLOWED_HOSTS = ["sms.example"]
    key = "tenant/7 key"
    recorder = Recorder(
        httpx.Response(200, json={"idempotency_key": key, "status": "accepted", "id": 42})
    )
    adapter = SmsGateway(client=recorder.client(), status_url="https://sms.example/v1/status/")

    result = query(adapter, key, request_id="corr-9")

    assert result is not None
    assert (result.outcome, result.message_id) == (Outcome.ACCEPTED, "42")
    (request,) = recorder.requests
    assert request.method == "GET"
    assert request.url.raw_path == b"/v1/status/tenant%2F7%20key"
    assert request.headers["X-Request-ID"] == "corr-9"
    assert request.headers["Accept"] == "application/json"
    assert request.content == b""


def test_request_id_defaults_to_the_key(settings) -> None:
    settings.GATEWAY_ALLOWED_HOSTS = ["sms.example"]
    recorder = Recorder(httpx.Response(404, json={"status": "unknown"}))
    adapter = SmsGateway(client=recorder.client(), status_url="https://sms.example/status")
    assert query(adapter, KEY) is None
    assert recorder.requests[0].headers["X-Request-ID"] == KEY


@pytest.mark.parametrize(
    ("response", "outcome", "error"),
    [
        (httpx.Response(503, text="down"), Outcome.REJECTED_TRANSIENT, "HTTP 503: down"),
        (httpx.Response(401, json={"error": "no"}), Outcome.REJECTED_PERMANENT, "HTTP 401"),
        (httpx.Response(302), Outcome.EXECUTOR_ERROR, "redirect not followed"),
        (
            httpx.Response(200, text="<html>welcome</html>"),
            Outcome.REJECTED_TRANSIENT,
            "HTTP 200 without an acceptance: <html>welcome</html>",
        ),
        (
            httpx.Response(200, json={"status": "queued", "message_id": "m"}),
            Outcome.REJECTED_TRANSIENT,
            "without an acceptance",
        ),
        (
            httpx.Response(200, json={"idempotency_key": "other", "status": "accepted"}),
            Outcome.REJECTED_TRANSIENT,
            "another idempotency key",
        ),
    ],
)
def test_anything_but_an_acceptance_of_this_key_confirms_nothing(
    settings, response, outcome, error
) -> None:
    settings.GATEWAY_ALLOWED_HOSTS = ["sms.example"]
    recorder = Recorder(response)
    adapter = SmsGateway(client=recorder.client(), status_url="https://sms.example/status")

    result = query(adapter, KEY)

    assert result is not None
    assert result.outcome is outcome
    assert error in result.error


def test_network_failure_is_a_result_not_an_exception(settings) -> None:
    settings.GATEWAY_ALLOWED_HOSTS = ["sms.example"]

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    adapter = SmsGateway(client=Recorder(refuse).client(), status_url="https://sms.example/status")
    result = query(adapter, KEY)
    assert result is not None
    assert result.outcome is Outcome.REJECTED_TRANSIENT
    assert result.error.startswith("ConnectError")
