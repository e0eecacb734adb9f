"""End to end through real processes: API -> database -> dispatcher -> django-q2 -> simulator."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid

import httpx
import pytest

from tests.e2e.conftest import E2E_REDIS_URL, wait_for

pytestmark = pytest.mark.e2e


def parse(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))


def outcomes(stack, intent_id: str) -> list[str]:
    return [a["outcome"] for a in stack.attempts(intent_id)]


def test_every_simulator_rule_end_to_end(stack):
    stack.start_simulator()
    stack.start_web()
    stack.start_workers()
    stack.start_dispatcher()
    request_id = f"e2e-{uuid.uuid4().hex[:8]}"
    with stack.api() as client:
        response = client.post(
            "/intents",
            json={"target": "sms.e2e", "payload": {"to": "+15550100001", "text": "hi"}},
            headers={"Idempotency-Key": "ok-1", "X-Request-ID": request_id},
        )
    assert response.status_code == 201
    ok = response.json()
    cases = {
        "permanent": stack.submit("+15550100400"),
        "always_503": stack.submit("+15550100503"),
        "always_429": stack.submit("+15550100429"),
        "no_answer": stack.submit("+15550100504"),
        "flaky_3": stack.submit("+15550100203"),
        "push": stack.submit("device-token-1", target="push.e2e"),
    }
    final = {name: stack.wait_terminal(i["id"]) for name, i in cases.items()}
    final["ok"] = stack.wait_terminal(ok["id"])

    assert final["ok"]["status"] == "accepted"
    assert final["ok"]["reason_code"] == "gateway_accepted"
    assert final["ok"]["gateway_message_id"]
    assert final["push"]["status"] == "accepted"
    assert final["permanent"]["status"] == "failed"
    assert final["permanent"]["reason_code"] == "gateway_rejected"
    assert outcomes(stack, cases["permanent"]["id"]) == ["rejected_permanent"]
    assert final["always_503"]["status"] == "exhausted"
    assert outcomes(stack, cases["always_503"]["id"]) == ["rejected_transient"] * 4
    assert final["no_answer"]["status"] == "exhausted"
    assert outcomes(stack, cases["no_answer"]["id"]) == ["timeout"] * 4
    assert final["flaky_3"]["status"] == "accepted"
    assert outcomes(stack, cases["flaky_3"]["id"]) == ["rejected_transient"] * 3 + ["accepted"]

    # 429 with Retry-After: 1 -> each retry waits at least a second, not the policy's 0.3 s.
    attempts_429 = stack.attempts(cases["always_429"]["id"])
    assert [a["outcome"] for a in attempts_429] == ["rejected_transient"] * 4
    gaps = [
        (parse(b["started_at"]) - parse(a["finished_at"])).total_seconds()
        for a, b in itertools.pairwise(attempts_429)
    ]
    assert min(gaps) >= 0.9, gaps

    messages = stack.gateway_messages()
    by_key: dict[str, list[dict]] = {}
    for message in messages:
        by_key.setdefault(message["idempotency_key"], []).append(message)
    # The intent id is the idempotency key of every gateway request.
    assert set(by_key) == {i["id"] for i in [ok, *cases.values()]}
    assert [m["status"] for m in by_key[cases["flaky_3"]["id"]]] == [503, 503, 503, 202]
    assert len(by_key[cases["always_503"]["id"]]) == 4
    # One correlation id from the client's request to the gateway call.
    assert by_key[ok["id"]][0]["request_id"] == request_id


def test_worker_killed_mid_attempt_loses_nothing(stack):
    stack.start_simulator(latency_ms=1000)  # every gateway call takes a second
    stack.start_web()
    stack.start_workers()
    stack.start_dispatcher()
    intent = stack.submit("+15550100001")
    wait_for(
        lambda: stack.intent(intent["id"])["status"] == "in_flight",
        timeout=20,
        what="the attempt to start",
    )
    stack.kill("workers")  # SIGKILL while the gateway call is in progress
    wait_for(
        lambda: "lease_lost" in outcomes(stack, intent["id"]),
        timeout=30,
        what="the sweeper to reclaim the lease",
    )
    stack.start_workers("workers-2")
    final = stack.wait_terminal(intent["id"])
    assert final["status"] == "accepted"
    attempt_outcomes = outcomes(stack, intent["id"])
    assert attempt_outcomes[0] == "lease_lost"
    assert attempt_outcomes[-1] == "accepted"
    # However many times the gateway was called, it delivered once.
    calls = [m for m in stack.gateway_messages() if m["idempotency_key"] == intent["id"]]
    assert len([m for m in calls if m["status"] == 202 and not m["duplicate"]]) == 1


def test_restart_in_the_middle_of_a_backlog(stack):
    stack.start_simulator()
    stack.start_web()
    ids = [stack.submit(f"+1555{n:07d}1")["id"] for n in range(150)]
    stack.start_workers()
    stack.start_dispatcher()
    wait_for(lambda: len(stack.gateway_messages()) >= 20, timeout=30, what="deliveries to begin")
    stack.kill("workers")  # mid-backlog, mid-batch
    stack.kill("dispatcher")
    stack.start_workers("workers-2")
    stack.start_dispatcher("dispatcher-2")
    finals = [stack.wait_terminal(i, timeout=90) for i in ids]
    assert {f["status"] for f in finals} == {"accepted"}
    delivered = [m for m in stack.gateway_messages() if m["status"] == 202 and not m["duplicate"]]
    assert sorted(m["idempotency_key"] for m in delivered) == sorted(ids)


def test_cancel_while_in_flight(stack):
    stack.start_simulator()
    stack.start_web()
    stack.start_workers()
    stack.start_dispatcher()
    intent = stack.submit("+15550100504")  # the gateway never answers
    wait_for(
        lambda: stack.intent(intent["id"])["status"] == "in_flight", timeout=20, what="in flight"
    )
    with stack.api() as client:
        response = client.post(f"/intents/{intent['id']}/cancel")
    assert response.status_code == 200
    body = response.json()
    assert body["cancel_requested"] is True
    final = stack.wait_terminal(intent["id"])
    assert final["status"] == "cancelled"
    assert final["reason_code"] == "cancelled_by_client"
    with stack.api() as client:
        again = client.post(f"/intents/{intent['id']}/cancel")
    assert again.status_code == 409
    assert again.json()["code"] == "already_terminal"
    assert isinstance(httpx.get(f"{stack.web}/healthz").json(), dict)


@pytest.mark.skipif(not E2E_REDIS_URL, reason="set E2E_REDIS_URL (make test-e2e-redis)")
def test_batches_travel_through_the_redis_broker(stack):
    """Dispatcher -> Redis list -> cluster: with no workers the batch waits in Redis."""
    import redis

    broker = redis.Redis.from_url(E2E_REDIS_URL)
    queue_key = "django_q:portal:q"  # django-q2's Redis broker: one list per cluster name
    stack.start_simulator()
    stack.start_web()
    stack.start_dispatcher()
    ids = [stack.submit(f"+155501{n:03d}01")["id"] for n in range(3)]
    wait_for(lambda: broker.llen(queue_key) >= 1, timeout=20, what="a batch queued in Redis")
    assert {stack.intent(i)["status"] for i in ids} == {"in_flight"}
    assert "redis" in stack.manage("qinfo").lower()
    stack.start_workers()
    finals = [stack.wait_terminal(i) for i in ids]
    assert {f["status"] for f in finals} == {"accepted"}
    wait_for(lambda: broker.llen(queue_key) == 0, timeout=10, what="the Redis queue to drain")
    broker.close()
