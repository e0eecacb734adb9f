"""The simulator's rules, called directly (no network)."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest

from gateways.simulator import GatewaySimulator


def post(sim: GatewaySimulator, to: str, key: str = "k-1", path: str = "/sms", **extra):
    field = "token" if path == "/push" else "to"
    body = json.dumps({field: to, "text": "x", **extra}).encode()
    return sim.decide(path, {"Idempotency-Key": key, "X-Request-ID": f"req-{key}"}, body)


@pytest.mark.parametrize(
    ("to", "status"),
    [("+15550100400", 400), ("+15550100503", 503), ("+15550100429", 429), ("+15550100001", 202)],
)
def test_recipient_suffix_decides(to: str, status: int) -> None:
    assert post(GatewaySimulator(), to).status == status


def test_429_says_retry_after_one_second_every_time() -> None:
    sim = GatewaySimulator()
    for _ in range(3):
        response = post(sim, "+15550100429")
        assert (response.status, response.headers["Retry-After"]) == (429, "1")


def test_503_number_never_recovers() -> None:
    sim = GatewaySimulator()
    assert [post(sim, "+15550100503").status for _ in range(5)] == [503] * 5


def test_504_number_is_held_without_an_answer() -> None:
    response = post(GatewaySimulator(), "+15550100504")
    assert response.hold
    assert response.status == 504


@pytest.mark.parametrize("n", [1, 3, 9])
def test_0020n_fails_n_times_per_key_then_accepts(n: int) -> None:
    sim = GatewaySimulator()
    to = f"+1555010020{n}"
    statuses = [post(sim, to, key="a").status for _ in range(n + 1)]
    assert statuses == [503] * n + [202]
    # Another key for the same number starts its own count.
    assert post(sim, to, key="b").status == 503


def test_resend_of_an_accepted_key_is_a_duplicate_with_the_same_id() -> None:
    sim = GatewaySimulator()
    first = post(sim, "+15550100001", key="same")
    second = post(sim, "+15550100001", key="same")
    assert (first.status, second.status) == (202, 202)
    assert second.body["message_id"] == first.body["message_id"]
    assert (first.body["duplicate"], second.body["duplicate"]) == (False, True)
    assert [r["duplicate"] for r in sim.messages()] == [False, True]


def test_push_uses_token_and_http_uses_to() -> None:
    sim = GatewaySimulator()
    assert post(sim, "tok-00400", key="p", path="/push").status == 400
    assert post(sim, "+15550100400", key="h", path="/http").status == 400
    http_without_to = sim.decide("/http", {"Idempotency-Key": "h2"}, b'{"event": "x"}')
    assert http_without_to.status == 202
    assert [r["to"] for r in sim.messages()] == ["tok-00400", "+15550100400", ""]


def test_records_carry_the_contract_fields_oldest_first() -> None:
    sim = GatewaySimulator()
    post(sim, "+15550100001", key="one")
    post(sim, "+15550100400", key="two")
    first, second = sim.messages()
    assert set(first) >= {
        "to",
        "idempotency_key",
        "status",
        "message_id",
        "duplicate",
        "received_at",
        "request_id",
    }
    assert (first["idempotency_key"], first["status"], first["request_id"]) == (
        "one",
        202,
        "req-one",
    )
    assert first["message_id"].startswith("sim-")
    assert (second["status"], second["message_id"]) == (400, None)
    assert dt.datetime.fromisoformat(first["received_at"]).tzinfo is not None


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({}, b'{"to": "+15550100001"}', 400),
        ({"Idempotency-Key": "  "}, b'{"to": "+15550100001"}', 400),
        ({"Idempotency-Key": "k"}, b"{not json", 400),
        ({"Idempotency-Key": "k"}, b'["a list"]', 400),
        ({"Idempotency-Key": "k"}, b"\xff\xfe", 400),
    ],
)
def test_bad_requests(headers, body, status) -> None:
    response = GatewaySimulator().decide("/sms", headers, body)
    assert response.status == status
    assert "error" in response.body


def test_routing() -> None:
    sim = GatewaySimulator()
    assert sim.handle("POST", "/fax", {}, b"").status == 404
    assert sim.handle("GET", "/sms", {}, b"").status == 405
    assert sim.handle("PUT", "/messages", {}, b"").status == 405
    assert sim.handle("GET", "/messages?x=1", {}, b"").body == []


def test_clearing_the_list_keeps_accepted_keys() -> None:
    sim = GatewaySimulator()
    first = post(sim, "+15550100001", key="kept")
    sim.clear_messages()
    assert sim.messages() == []
    again = post(sim, "+15550100001", key="kept")
    assert again.body == {**first.body, "duplicate": True}


def test_record_list_is_capped() -> None:
    sim = GatewaySimulator(max_records=3)
    for n in range(5):
        post(sim, "+15550100001", key=f"k{n}")
    assert [r["idempotency_key"] for r in sim.messages()] == ["k2", "k3", "k4"]


def test_concurrent_requests_with_one_key_accept_exactly_once() -> None:
    sim = GatewaySimulator()
    barrier = threading.Barrier(40)
    statuses: list[int] = []

    def worker() -> None:
        barrier.wait()
        statuses.append(post(sim, "+15550100203", key="race").status)

    threads = [threading.Thread(target=worker) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(statuses) == [202] * 37 + [503] * 3
    records = sim.messages()
    assert sum(1 for r in records if r["status"] == 202 and not r["duplicate"]) == 1
    assert len({r["message_id"] for r in records if r["status"] == 202}) == 1
