"""Failover, the shared circuit breaker and throttle, and at_most_once, through the engine."""

from __future__ import annotations

import pytest

from deadletters.models import DeadLetter
from gateways.models import CircuitState, ConnectionHealth
from intents.models import Attempt, Intent, IntentStatus, ReasonCode

from .conftest import scripted_connection, sms_target

pytestmark = pytest.mark.django_db


def load(engine, connections: dict[str, str], target: list[str], **target_options) -> None:
    for key, text in connections.items():
        engine.folders.connection(key, text)
    engine.folders.target("sms_routed", sms_target("sms.routed", target, **target_options))
    engine.folders.sync()


def fresh(intent) -> Intent:
    return Intent.objects.get(pk=intent.pk)


def test_a_transient_failure_moves_the_next_attempt_to_the_next_connection(
    engine, scripted_provider
) -> None:
    load(
        engine,
        {"down": scripted_connection("down", "down"), "up": scripted_connection("up")},
        ["down", "up"],
    )
    intent = engine.submit()

    engine.run()
    first = fresh(intent)
    assert (first.status, first.connection, first.attempts_count) == ("pending", "down", 1)

    engine.clock.advance(1)
    engine.run()
    done = fresh(intent)
    assert (done.status, done.connection) == (IntentStatus.ACCEPTED, "up")
    assert list(Attempt.objects.order_by("number").values_list("connection", "outcome")) == [
        ("down", "rejected_transient"),
        ("up", "accepted"),
    ]


def test_an_accepted_intent_stays_on_its_connection_and_the_api_shows_it(engine, client) -> None:
    load(engine, {"up": scripted_connection("up")}, ["up"])
    intent = engine.submit()
    engine.run()
    from intents.serializers import IntentOutputSerializer

    data = IntentOutputSerializer(fresh(intent)).data
    assert data["connection"] == "up"
    # the scripted connection sends no receipts: its delivery is unknown, not pending
    assert data["delivery_status"] == "unknown" and data["delivered_at"] is None


def test_twenty_failures_open_the_circuit_and_no_call_is_made_while_open(
    engine, scripted_provider
) -> None:
    load(engine, {"down": scripted_connection("down", "down")}, ["down"])
    for _ in range(20):
        engine.submit()
    engine.run()
    health = ConnectionHealth.objects.get(connection_key="down")
    assert health.state == CircuitState.OPEN
    assert scripted_provider.calls_to("down") == 20

    engine.clock.advance(1)  # the twenty are due again, and one more arrives
    newcomer = engine.submit()
    engine.run()
    assert scripted_provider.calls_to("down") == 20  # nothing was sent
    waiting = fresh(newcomer)
    assert waiting.status == IntentStatus.PENDING
    assert waiting.attempts_count == 0  # an open circuit is never charged
    assert not Attempt.objects.filter(intent=newcomer).exists()
    assert waiting.next_attempt_at == health.open_until
    assert ConnectionHealth.objects.get(connection_key="down").circuit_deferrals == 21


def test_after_open_s_one_probe_goes_out_and_its_success_closes_the_circuit(
    engine, scripted_provider
) -> None:
    load(engine, {"down": scripted_connection("down", "down")}, ["down"])
    for _ in range(20):
        engine.submit()
    engine.run()
    scripted_provider.modes["down"] = "up"  # the provider recovers

    engine.clock.advance(30)  # open_s
    engine.run()
    assert scripted_provider.calls_to("down") == 21  # exactly one probe
    assert ConnectionHealth.objects.get(connection_key="down").state == CircuitState.CLOSED
    assert Intent.objects.filter(status=IntentStatus.ACCEPTED).count() == 1

    engine.clock.advance(1)
    engine.run()
    assert Intent.objects.filter(status=IntentStatus.ACCEPTED).count() == 20


def test_a_failed_probe_opens_the_circuit_again(engine, scripted_provider) -> None:
    load(engine, {"down": scripted_connection("down", "down")}, ["down"])
    for _ in range(20):
        engine.submit()
    engine.run()
    engine.clock.advance(30)
    engine.run()
    health = ConnectionHealth.objects.get(connection_key="down")
    assert scripted_provider.calls_to("down") == 21
    assert health.state == CircuitState.OPEN
    assert health.open_until == engine.clock.now + __import__("datetime").timedelta(seconds=30)


def test_an_open_circuit_fails_over_within_the_same_attempt(engine, scripted_provider) -> None:
    load(
        engine,
        {"down": scripted_connection("down", "down"), "up": scripted_connection("up")},
        ["down", "up"],
    )
    for _ in range(20):
        engine.submit()
    engine.run()  # 20 failures on "down": open
    newcomer = engine.submit()
    engine.run()
    done = fresh(newcomer)
    assert (done.status, done.connection, done.attempts_count) == ("accepted", "up", 1)
    assert scripted_provider.calls_to("down") == 20


def test_a_rate_holds_and_a_throttle_wait_is_never_charged(engine, scripted_provider) -> None:
    load(engine, {"slow": scripted_connection("slow", extra="rate_per_second = 5")}, ["slow"])
    intents = [engine.submit() for _ in range(12)]

    engine.run()
    assert scripted_provider.calls_to("slow") == 5
    waiting = [fresh(i) for i in intents if fresh(i).status == IntentStatus.PENDING]
    assert len(waiting) == 7
    assert all(i.attempts_count == 0 for i in waiting)
    waits = sorted((i.next_attempt_at - engine.clock.now).total_seconds() for i in waiting)
    assert waits == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4])
    assert ConnectionHealth.objects.get(connection_key="slow").throttle_waits == 7

    engine.clock.advance(0.4)  # two tokens back
    engine.run()
    assert scripted_provider.calls_to("slow") == 7
    engine.clock.advance(1)
    engine.run()
    assert scripted_provider.calls_to("slow") == 12
    assert Intent.objects.filter(status=IntentStatus.ACCEPTED).count() == 12


def test_an_exhausted_rate_fails_over_to_the_next_connection(engine, scripted_provider) -> None:
    load(
        engine,
        {
            "slow": scripted_connection("slow", extra="rate_per_second = 2"),
            "spare": scripted_connection("spare"),
        },
        ["slow", "spare"],
    )
    for _ in range(5):
        engine.submit()
    engine.run()
    assert (scripted_provider.calls_to("slow"), scripted_provider.calls_to("spare")) == (2, 3)
    assert Intent.objects.filter(status=IntentStatus.ACCEPTED).count() == 5


@pytest.mark.parametrize("delivery", ["at_most_once", "at_least_once"])
def test_at_most_once_never_retries_an_unknown_outcome(engine, scripted_provider, delivery) -> None:
    load(engine, {"slow": scripted_connection("slow", "timeout")}, ["slow"], delivery=delivery)
    intent = engine.submit()
    engine.run()
    after = fresh(intent)
    if delivery == "at_most_once":
        assert (after.status, after.reason_code) == (
            IntentStatus.FAILED,
            ReasonCode.OUTCOME_UNKNOWN,
        )
        assert DeadLetter.objects.get(intent=intent).reason_code == "outcome_unknown"
    else:
        assert after.status == IntentStatus.PENDING


def test_at_most_once_after_a_lost_lease(engine, scripted_provider) -> None:
    from intents.dispatch import claim_batch
    from intents.execution import sweep_expired_leases

    load(engine, {"up": scripted_connection("up")}, ["up"], delivery="at_most_once")
    intent = engine.submit()
    assert claim_batch(
        tenant_ids=[engine.tenant.id], batch_size=1, worker_id="gone", lease_margin_s=1
    )
    engine.clock.advance(120)  # the worker vanished mid-attempt
    assert sweep_expired_leases() == 1
    after = fresh(intent)
    assert (after.status, after.reason_code) == (IntentStatus.FAILED, ReasonCode.OUTCOME_UNKNOWN)


def test_the_circuit_gauge_reports_an_open_circuit(engine, client, settings) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    load(engine, {"down": scripted_connection("down", "down")}, ["down"])
    for _ in range(20):
        engine.submit()
    engine.run()
    settings.METRICS_TOKEN = "t"
    text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t").content.decode()
    [family] = [
        f
        for f in text_string_to_metric_families(text)
        if f.name == "portal_connection_circuit_state"
    ]
    values = {s.labels["connection"]: s.value for s in family.samples}
    assert values["down"] == 2
    assert values["simulator-sms"] == 0


def test_the_built_in_simulator_connection_never_opens_a_circuit(
    engine, simulator_settings
) -> None:
    """A target without connections behaves as before: the demo's 503 mix stops nothing."""
    engine.folders.sync()
    failing = [engine.submit(target="sms.otp", to="+15550100503") for _ in range(25)]
    engine.run()
    health = ConnectionHealth.objects.get(connection_key="simulator-sms")
    assert (health.state, health.total_calls, health.total_failures) == (
        CircuitState.CLOSED,
        25,
        25,
    )

    engine.clock.advance(60)  # every retry is due, and a newcomer that would succeed
    newcomer = engine.submit(target="sms.otp", to="+15550100001")
    engine.run()
    health.refresh_from_db()
    assert health.state == CircuitState.CLOSED and health.total_calls == 51
    assert health.circuit_deferrals == 0
    assert fresh(newcomer).status == IntentStatus.ACCEPTED
    assert all(fresh(intent).attempts_count == 2 for intent in failing)
