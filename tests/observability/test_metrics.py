"""/metrics: the scrape parses, its gauges say what the database says, the counters match
a scripted run's rows, it is protected, and it sums values across processes."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

import pytest
from django.db import OperationalError, connections
from prometheus_client.parser import text_string_to_metric_families

from deadletters.models import DeadLetter
from intents.models import Attempt, Intent

from .conftest import PUSH_CONTRACT


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return samples(response.content.decode())


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of the exposition, keyed by (name, sorted labels); parsing must succeed."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped, name, **labels) -> float:
    return scraped.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def backlog_rows(rows):
    """A backlog with every kind of row the gauges count."""
    rows.intent(next_attempt_at=rows.ago(seconds=90))  # due, oldest
    rows.intent(next_attempt_at=rows.ago(seconds=5))  # due
    rows.intent(next_attempt_at=rows.now)  # due exactly now
    rows.intent(next_attempt_at=rows.now + dt.timedelta(seconds=30))  # scheduled
    rows.intent(contract=PUSH_CONTRACT, next_attempt_at=rows.now + dt.timedelta(hours=1))
    rows.intent(status="in_flight", lease_expires_at=rows.now + dt.timedelta(seconds=20))
    rows.intent(status="in_flight", lease_expires_at=rows.ago(seconds=1))  # expired lease
    failed = [
        rows.intent(
            status="exhausted", finished_at=rows.ago(minutes=5), reason_code="attempts_exhausted"
        )
        for _ in range(3)
    ]
    rows.dead_letter(failed[0], reason_code="attempts_exhausted")
    rows.dead_letter(failed[1], reason_code="attempts_exhausted")
    rows.dead_letter(failed[2], reason_code="gateway_rejected", status="resolved")
    rows.replay([DeadLetter.objects.get(intent=failed[0])], status="pending")
    from portal.observability.services import heartbeat

    heartbeat(worker_id="dispatcher@a:1", kind="dispatcher", now=rows.ago(seconds=4))
    heartbeat(worker_id="worker@a:2", kind="worker", now=rows.ago(seconds=40))
    heartbeat(worker_id="worker@a:3", kind="worker", now=rows.ago(seconds=10))
    return rows


def test_backlog_gauges_match_the_database(client, backlog_rows):
    now = backlog_rows.now
    scraped = scrape(client)
    pending = Intent.objects.filter(status="pending")
    in_flight = Intent.objects.filter(status="in_flight")
    assert value(scraped, "portal_database_up") == 1
    assert (
        value(scraped, "portal_backlog_due_intents")
        == pending.filter(next_attempt_at__lte=now).count()
        == 3
    )
    assert (
        value(scraped, "portal_backlog_scheduled_intents")
        == pending.filter(next_attempt_at__gt=now).count()
        == 2
    )
    assert value(scraped, "portal_backlog_in_flight_intents") == in_flight.count() == 2
    assert (
        value(scraped, "portal_backlog_expired_leases")
        == in_flight.filter(lease_expires_at__lt=now).count()
        == 1
    )
    assert value(scraped, "portal_backlog_oldest_due_age_seconds") == 90
    assert value(scraped, "portal_dead_letters_open") == 2
    assert value(scraped, "portal_dead_letters_open_by_reason", reason="attempts_exhausted") == 2
    assert ("portal_dead_letters_open_by_reason", (("reason", "gateway_rejected"),)) not in scraped
    assert value(scraped, "portal_replay_requests_pending") == 1
    assert value(scraped, "portal_worker_heartbeat_age_seconds", kind="dispatcher") == 4
    assert value(scraped, "portal_worker_heartbeat_age_seconds", kind="worker") == 10


def test_gauges_follow_database_changes(client, backlog_rows, frozen_clock):
    oldest = Intent.objects.filter(status="pending").order_by("next_attempt_at").first()
    assert oldest is not None
    Intent.objects.filter(pk=oldest.pk).update(status="in_flight")  # claimed
    DeadLetter.objects.filter(status="open").update(status="discarded")
    frozen_clock.advance(60)  # the 30 s one becomes due; the other due ones age
    scraped = scrape(client)
    assert value(scraped, "portal_backlog_due_intents") == 3
    assert value(scraped, "portal_backlog_scheduled_intents") == 1
    assert value(scraped, "portal_backlog_in_flight_intents") == 3
    assert value(scraped, "portal_backlog_oldest_due_age_seconds") == 65
    assert value(scraped, "portal_dead_letters_open") == 0
    assert value(scraped, "portal_worker_heartbeat_age_seconds", kind="worker") == 70


def test_empty_database_scrapes_zeroes(client, db, frozen_clock):
    scraped = scrape(client)
    assert value(scraped, "portal_backlog_due_intents") == 0
    assert value(scraped, "portal_backlog_oldest_due_age_seconds") == 0
    assert value(scraped, "portal_dead_letters_open") == 0


def test_scrape_queries_stay_few(client, backlog_rows, django_assert_max_num_queries):
    # The backlog and heartbeats, the connections' circuits (keys, health rows), the
    # audit head.
    with django_assert_max_num_queries(9):
        scrape(client)


def test_scrape_survives_an_unreachable_database(client, db):
    down = OperationalError("could not connect to server")
    with mock.patch.object(connections["default"], "cursor", side_effect=down):
        scraped = scrape(client)
    assert value(scraped, "portal_database_up") == 0
    assert ("portal_backlog_due_intents", ()) not in scraped
    # The process's own counters are still served.
    assert ("portal_leases_reclaimed_total", ()) in scraped


def test_counters_match_the_rows_of_a_scripted_run(
    client, frozen_clock, tenant, settings, django_capture_on_commit_callbacks
):
    """Drive the real engine through a mixed workload; each counter's increase must equal
    what the database recorded."""
    from intents.dispatch import run_once
    from intents.registry import registry_sync
    from intents.services import intent_submit
    from tests.conftest import FIXTURE_TARGETS
    from tests.engine import scripted_gateway

    scripted = "tests.engine.scripted_gateway.ScriptedGateway"
    settings.GATEWAY_ADAPTERS = {"sms": scripted, "push": scripted, "http": scripted}
    scripted_gateway.reset()
    registry_sync(directory=FIXTURE_TARGETS, actor_label="tests")
    before = scrape(client)
    recipients = ["+15550100001", "+15550100002", "+15550100400", "+15550100503", "+15550100504",
                  "+15550100202", "+15550100666"]  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        for i, to in enumerate(recipients):
            intent_submit(
                tenant=tenant,
                idempotency_key=f"scripted-{i}",
                target_key="sms.fast",
                contract_version=None,
                payload={"to": to, "text": "hello"},
            )
    for _ in range(4):
        with django_capture_on_commit_callbacks(execute=True):
            run_once()
        frozen_clock.advance(2)
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("portal_intents_created_total", tenant=tenant.name, target="sms.fast") == 7
    assert Attempt.objects.count() > 7  # retries happened
    for outcome in (
        "accepted",
        "rejected_permanent",
        "rejected_transient",
        "timeout",
        "executor_error",
    ):
        expected = Attempt.objects.filter(outcome=outcome).count()
        assert delta("portal_attempts_total", gateway="sms", outcome=outcome) == expected, outcome
    assert delta("portal_attempt_duration_seconds_count", gateway="sms") == Attempt.objects.count()
    finished = Intent.objects.exclude(finished_at=None)
    for reason in ("gateway_accepted", "gateway_rejected", "attempts_exhausted"):
        expected = finished.filter(reason_code=reason).count()
        assert delta("portal_intents_finished_total", reason=reason) == expected, reason
    accepted = finished.filter(status="accepted").count()
    assert accepted >= 3
    assert delta("portal_acceptance_latency_seconds_count", target="sms.fast") == accepted
    # Backlog gauges of the same scrape: nothing left due, failures dead-lettered.
    assert value(after, "portal_backlog_due_intents") == 0
    assert (
        value(after, "portal_dead_letters_open")
        == DeadLetter.objects.filter(status="open").count()
        > 0
    )


def test_token_required_when_configured(client, db, settings):
    settings.METRICS_TOKEN = "s3cret-scrape-token"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics").headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Basic s3cret-scrape-token").status_code == 401
    ok = client.get(
        "/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token", REMOTE_ADDR="10.1.2.3"
    )
    assert ok.status_code == 200
    samples(ok.content.decode())


def test_without_token_only_loopback_clients(client, db, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 403
    # A bearer header does not open it when no token is configured.
    assert (
        client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer ").status_code
        == 403
    )


INCREMENT = textwrap.dedent(
    """
    from portal.observability import metrics
    metrics.ATTEMPTS.labels(gateway="sms", outcome="accepted").inc({n})
    metrics.ATTEMPT_DURATION.labels(gateway="sms").observe(0.2)
    """
)


def test_multiprocess_mode_sums_every_process(client, db, tmp_path: Path, monkeypatch):
    """Two other processes record attempts; this process's scrape reports their sum."""
    root = Path(__file__).resolve().parents[2]
    for n in (3, 4):
        subprocess.run(
            [sys.executable, "-c", INCREMENT.format(n=n)],
            cwd=root,
            env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
            check=True,
            timeout=60,
        )
    assert len(list(tmp_path.glob("*.db"))) >= 2  # one file per process and metric type
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    scraped = scrape(client)
    assert value(scraped, "portal_attempts_total", gateway="sms", outcome="accepted") == 7
    assert value(scraped, "portal_attempt_duration_seconds_count", gateway="sms") == 2
    assert value(scraped, "portal_database_up") == 1  # the database gauges come along


EXPOSED = {
    "portal_intents_created": "counter",
    "portal_attempts": "counter",
    "portal_retries_scheduled": "counter",
    "portal_intents_finished": "counter",
    "portal_dead_letters": "counter",
    "portal_replays": "counter",
    "portal_leases_reclaimed": "counter",
    "portal_reconciliations": "counter",
    "portal_retention_purged": "counter",
    "portal_attempt_duration_seconds": "histogram",
    "portal_acceptance_latency_seconds": "histogram",
    "portal_dispatch_lag_seconds": "histogram",
    "portal_database_up": "gauge",
    "portal_backlog_due_intents": "gauge",
    "portal_backlog_scheduled_intents": "gauge",
    "portal_backlog_in_flight_intents": "gauge",
    "portal_backlog_expired_leases": "gauge",
    "portal_backlog_oldest_due_age_seconds": "gauge",
    "portal_dead_letters_open": "gauge",
    "portal_dead_letters_open_by_reason": "gauge",
    "portal_replay_requests_pending": "gauge",
    "portal_audit_head_sequence": "gauge",
    "portal_webhook_endpoints_disabled": "gauge",
    "portal_worker_heartbeat_age_seconds": "gauge",
    "portal_connection_attempts": "counter",
    "portal_connection_deferrals": "counter",
    "portal_receipts": "counter",
    "portal_delivery_latency_seconds": "histogram",
    "portal_connection_circuit_state": "gauge",
    "portal_escalation_episodes_open": "gauge",
}


def test_every_documented_metric_is_exposed_with_its_type_and_help(client, backlog_rows):
    """The list in docs/operations.md, checked against a parsed scrape."""
    text = client.get("/metrics").content.decode()
    families = {
        family.name: family
        for family in text_string_to_metric_families(text)
        if family.name.startswith("portal_")
    }
    assert {name: family.type for name, family in families.items()} == EXPOSED
    assert all(family.documentation for family in families.values())
    docs = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    for name, kind in EXPOSED.items():
        shown = f"{name}_total" if kind == "counter" else name
        assert f"`{shown}`" in docs, shown


def test_reconciliation_and_purge_counters_move(client, rows, settings):
    from portal.observability.retention import retention_purge

    settings.RETENTION_INTENT_DAYS = 30
    before = scrape(client)
    old = rows.intent(status="accepted", finished_at=rows.ago(days=40), attempts_count=1)
    rows.attempt(old, outcome="accepted", finished_at=rows.ago(days=40))
    retention_purge()
    after = scrape(client)
    for kind in ("intents", "attempts"):
        assert (
            value(after, "portal_retention_purged_total", kind=kind)
            - value(before, "portal_retention_purged_total", kind=kind)
            == 1
        ), kind


def test_replay_outcomes_are_counted(client, rows, django_capture_on_commit_callbacks):
    from deadletters.models import ReplayRequest
    from deadletters.services import replay_requests_expire

    failed = rows.intent(status="exhausted", finished_at=rows.ago(minutes=5))
    request = rows.replay([rows.dead_letter(failed, status="replay_pending")], status="pending")
    ReplayRequest.objects.filter(pk=request.pk).update(expires_at=rows.ago(seconds=1))
    before = scrape(client)
    with django_capture_on_commit_callbacks(execute=True):
        assert replay_requests_expire() == 1
    after = scrape(client)
    assert (
        value(after, "portal_replays_total", outcome="expired")
        - value(before, "portal_replays_total", outcome="expired")
        == 1
    )
    assert value(after, "portal_replay_requests_pending") == 0
    assert value(after, "portal_dead_letters_open") == 1  # re-opened
