"""Every simulator rule through real HTTP, against a simulator on a free port."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from gateways.simulator import start_simulator_in_thread


@pytest.fixture
def client(simulator):
    with httpx.Client(base_url=simulator.base_url, timeout=5, trust_env=False) as client:
        yield client


def post(client: httpx.Client, path: str, body: dict, key: str = "key-1") -> httpx.Response:
    return client.post(path, json=body, headers={"Idempotency-Key": key, "X-Request-ID": "r-1"})


def test_accepts_with_a_message_id(client) -> None:
    response = post(client, "/sms", {"to": "+15550100001", "text": "hi"})
    assert response.status_code == 202
    assert response.json()["message_id"].startswith("sim-")
    assert response.headers["X-Message-ID"] == response.json()["message_id"]
    assert response.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/sms", {"to": "+15550100400", "text": "x"}, 400),
        ("/sms", {"to": "+15550100503", "text": "x"}, 503),
        ("/push", {"token": "device-00400"}, 400),
        ("/push", {"token": "device-00503"}, 503),
        ("/http", {"to": "+15550100400"}, 400),
        ("/http", {"event": "no recipient"}, 202),
    ],
)
def test_recipient_rules(client, path: str, body: dict, status: int) -> None:
    assert post(client, path, body).status_code == status


def test_429_with_retry_after(client) -> None:
    for n in range(2):
        response = post(client, "/sms", {"to": "+15550100429", "text": "x"}, key=f"k{n}")
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "1"


def test_504_number_gets_no_answer_while_others_do(client, simulator) -> None:
    with pytest.raises(httpx.ReadTimeout):
        client.post(
            "/sms",
            json={"to": "+15550100504", "text": "x"},
            headers={"Idempotency-Key": "held"},
            timeout=0.2,
        )
    assert post(client, "/sms", {"to": "+15550100001", "text": "x"}, key="k2").status_code == 202
    assert simulator.wait_for_held(0, timeout=5)


def test_0020n_sequence_then_duplicates(client) -> None:
    body = {"to": "+15550100202", "text": "x"}
    statuses = [post(client, "/sms", body, key="intent-1").status_code for _ in range(3)]
    assert statuses == [503, 503, 202]
    resend = post(client, "/sms", body, key="intent-1")
    assert resend.status_code == 202

    records = client.get("/messages").json()
    assert [(r["status"], r["duplicate"]) for r in records] == [
        (503, False),
        (503, False),
        (202, False),
        (202, True),
    ]
    assert records[2]["message_id"] == records[3]["message_id"] == resend.json()["message_id"]


def test_messages_list_and_delete(client) -> None:
    post(client, "/sms", {"to": "+15550100001", "text": "a"}, key="first")
    post(client, "/push", {"token": "tok-1"}, key="second")

    records = client.get("/messages").json()
    assert [r["idempotency_key"] for r in records] == ["first", "second"]
    assert [r["to"] for r in records] == ["+15550100001", "tok-1"]
    assert records[0]["request_id"] == "r-1"
    times = [dt.datetime.fromisoformat(r["received_at"]) for r in records]
    assert times == sorted(times)

    assert client.delete("/messages").status_code == 200
    assert client.get("/messages").json() == []


@pytest.mark.parametrize(
    ("method", "path", "content", "headers", "status"),
    [
        ("POST", "/sms", b'{"to": "+15550100001"}', {}, 400),  # no Idempotency-Key
        ("POST", "/sms", b"{oops", {"Idempotency-Key": "k"}, 400),
        ("POST", "/fax", b"{}", {"Idempotency-Key": "k"}, 404),
        ("GET", "/", b"", {}, 404),
        ("GET", "/sms", b"", {}, 405),
    ],
)
def test_bad_requests_get_json_errors(client, method, path, content, headers, status) -> None:
    response = client.request(method, path, content=content, headers=headers)
    assert response.status_code == status
    assert "error" in response.json()


def test_keep_alive_connection_serves_many_requests(client) -> None:
    for n in range(20):
        assert post(client, "/sms", {"to": "+15550100001", "text": "x"}, key=f"k{n}").is_success
    assert len(client.get("/messages").json()) == 20


def test_latency_option_delays_answers() -> None:
    server, base_url = start_simulator_in_thread(latency_ms=2_000)
    try:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                f"{base_url}/sms",
                json={"to": "+15550100001", "text": "x"},
                headers={"Idempotency-Key": "slow"},
                timeout=0.2,
                trust_env=False,
            )
    finally:
        server.stop()
