"""Each kind's condition: it opens an episode when it holds and resolves it when it clears.

Every rule posts to a webhook connection (the loopback receiver), whose body names the
rule, the kind and the subject.
"""

from __future__ import annotations

import datetime as dt

from gateways.base import Outcome
from gateways.circuit import ConnectionOutcomes, circuit_claim_probe, circuit_record
from gateways.connections import CircuitPolicy
from intents.dispatch import run_once
from intents.services import intent_reopen
from portal.escalation.models import Episode
from portal.escalation.tasks import evaluate_escalations

from .conftest import REJECTED


def rule(kind: str, **parameters: object) -> str:
    lines = [f"{name} = {value!r}".replace("'", '"') for name, value in parameters.items()]
    return "\n".join(
        ["[[rule]]", f'key = "{kind}"', f'kind = "{kind}"', 'destinations = ["hook"]', *lines]
    )


def events(receiver) -> list[tuple[str, str, str]]:
    return [(b["type"], b["kind"], b["subject"]) for b in receiver.bodies("/hook")]


def test_backlog_stale_while_the_oldest_due_intent_waits(
    registry, submit, scripted, frozen_clock, receiver
) -> None:
    registry(rule("backlog.stale", older_than_s=120))
    submit("+15550100001")

    frozen_clock.advance(100)
    assert evaluate_escalations()["opened"] == 0
    frozen_clock.advance(30)  # 130 s old now
    evaluate_escalations()
    run_once()  # dispatched and accepted: nothing is due any more
    evaluate_escalations()

    assert events(receiver) == [
        ("escalation.triggered", "backlog.stale", ""),
        ("escalation.resolved", "backlog.stale", ""),
    ]
    (first, second) = receiver.bodies("/hook")
    assert first["details"]["due"] == 1
    assert first["summary"].startswith("oldest due intent has waited 130 s")
    assert second["resolved_at"] is not None
    assert first["dedup_key"] == second["dedup_key"]


def test_sla_breach_needs_enough_decided_intents(
    registry, dead_lettered, frozen_clock, receiver
) -> None:
    registry(
        rule("sla.breach", below_percent=90, window_minutes=30, min_intents=3)
        + "\nmin_coverage_percent = 100"
    )
    dead_lettered(REJECTED)
    dead_lettered(REJECTED)
    frozen_clock.advance(1)
    assert evaluate_escalations()["opened"] == 0  # two decided intents: too few to judge

    dead_lettered(REJECTED)
    frozen_clock.advance(1)
    evaluate_escalations()
    episode = Episode.objects.get()
    assert episode.subject == "target:sms.fast"
    assert episode.details["share_percent"] == 0.0
    assert episode.details["decided"] == 3

    frozen_clock.advance(31 * 60)  # the window no longer holds them
    evaluate_escalations()
    assert events(receiver) == [
        ("escalation.triggered", "sla.breach", "target:sms.fast"),
        ("escalation.resolved", "sla.breach", "target:sms.fast"),
    ]


def test_connection_circuit_open_until_it_closes(registry, frozen_clock, receiver) -> None:
    registry(rule("connection.circuit_open", for_s=30))
    policy = CircuitPolicy(failure_ratio=0.5, min_calls=2, window_s=60, open_s=10)
    failing = ConnectionOutcomes()
    failing.add(Outcome.TIMEOUT, "timed out")
    failing.add(Outcome.TIMEOUT, "timed out")
    circuit_record(key="sim-sms", policy=policy, outcomes=failing, now=frozen_clock.now)

    frozen_clock.advance(20)
    assert evaluate_escalations()["opened"] == 0  # open for 20 s only
    frozen_clock.advance(20)
    evaluate_escalations()
    assert circuit_claim_probe(key="sim-sms", now=frozen_clock.now)
    probing = ConnectionOutcomes(probe=True)
    probing.add(Outcome.ACCEPTED, "")
    circuit_record(key="sim-sms", policy=policy, outcomes=probing, now=frozen_clock.now)
    evaluate_escalations()

    assert events(receiver) == [
        ("escalation.triggered", "connection.circuit_open", "connection:sim-sms"),
        ("escalation.resolved", "connection.circuit_open", "connection:sim-sms"),
    ]
    assert receiver.bodies("/hook")[0]["details"]["last_failure"] == "timed out"


def test_replay_failed_when_a_replayed_intent_dead_letters_again(
    registry, dead_lettered, frozen_clock, receiver
) -> None:
    registry(rule("replay.failed", count=1, window_minutes=10))
    intent = dead_lettered(REJECTED)
    assert evaluate_escalations()["opened"] == 0  # a first failure is no failed replay

    intent_reopen(intent=intent, now=frozen_clock.now)
    for _ in range(5):
        run_once()
        frozen_clock.advance(1)
    evaluate_escalations()
    frozen_clock.advance(11 * 60)
    evaluate_escalations()

    assert events(receiver) == [
        ("escalation.triggered", "replay.failed", ""),
        ("escalation.resolved", "replay.failed", ""),
    ]
    assert receiver.bodies("/hook")[0]["details"]["dead_lettered_again"] == 1


def test_a_retired_rule_resolves_its_open_episodes(
    registry, dead_letter, frozen_clock, receiver
) -> None:
    registry(rule("dead_letters.burst", count=1, window_minutes=5))
    dead_letter(REJECTED)
    evaluate_escalations()

    registry("")  # the rule is gone from the file
    evaluate_escalations()

    assert events(receiver) == [
        ("escalation.triggered", "dead_letters.burst", "target:sms.fast"),
        ("escalation.resolved", "dead_letters.burst", "target:sms.fast"),
    ]


def test_a_webhook_notification_keeps_its_id_on_a_resend(
    registry, dead_letter, frozen_clock, receiver
) -> None:
    registry(rule("dead_letters.burst", count=1, window_minutes=5))
    receiver.statuses = [500]
    dead_letter(REJECTED)
    evaluate_escalations()
    frozen_clock.advance(60)
    evaluate_escalations()

    first, second = (r["headers"] for r in receiver.requests)
    assert first["webhook-id"] == second["webhook-id"]
    assert first["webhook-id"].endswith(".trigger")
    assert Episode.objects.get().opened_at == frozen_clock.now - dt.timedelta(seconds=60)


def test_webhook_endpoint_disabled_by_delivery_until_it_is_enabled_again(
    registry, frozen_clock, receiver, tenant, settings
) -> None:
    from portal.audit.services import Actor
    from portal.events.services import (
        webhook_endpoint_auto_disable,
        webhook_endpoint_create,
        webhook_endpoint_enable,
        webhook_endpoint_update,
    )

    settings.DEBUG = True  # an http:// endpoint URL is accepted in development only
    registry(rule("webhook_endpoint.disabled"))
    client = Actor.system("client")
    gone, _ = webhook_endpoint_create(
        tenant=tenant, url="http://hooks.example/a?token=s3cret", actor=client
    )
    switched_off, _ = webhook_endpoint_create(
        tenant=tenant, url="http://hooks.example/b", actor=client
    )
    webhook_endpoint_update(endpoint=switched_off, changes={"status": "disabled"}, actor=client)
    assert evaluate_escalations()["opened"] == 0  # the tenant's own decision pages nobody

    webhook_endpoint_auto_disable(
        endpoint=gone, reason="gone", now=frozen_clock.now, detail="HTTP 410"
    )
    evaluate_escalations()
    frozen_clock.advance(60)
    evaluate_escalations()  # still disabled: the same episode, no second notification
    webhook_endpoint_enable(endpoint=gone, actor=Actor.system("operator"))
    evaluate_escalations()

    subject = f"endpoint:{gone.public_id}"
    assert events(receiver) == [
        ("escalation.triggered", "webhook_endpoint.disabled", subject),
        ("escalation.resolved", "webhook_endpoint.disabled", subject),
    ]
    details = receiver.bodies("/hook")[0]["details"]
    assert details["reason"] == "gone" and details["host"] == "hooks.example"
    assert "s3cret" not in str(receiver.bodies("/hook"))
    assert Episode.objects.get(subject=subject).resolved_at is not None
