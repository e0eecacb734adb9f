"""/healthz and /readyz: ready when everything holds, and each cause of unreadiness named."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.db import OperationalError, connection, connections
from django.db.migrations.recorder import MigrationRecorder

from portal.observability import services
from portal.observability.models import WorkerHeartbeat


@pytest.fixture
def alive(rows):
    """A dispatcher and a worker that reported just now."""
    services.heartbeat(worker_id="dispatcher@host:1", kind="dispatcher", now=rows.ago(seconds=2))
    services.heartbeat(worker_id="worker@host:2", kind="worker", now=rows.ago(seconds=3))
    return rows


def readyz(client):
    response = client.get("/readyz")
    body = response.json()
    assert response["Cache-Control"].startswith("max-age=0")
    assert [check["name"] for check in body["checks"]] == [
        "database", "migrations", "heartbeats", "dispatch_lag"
    ]  # fmt: skip
    return response.status_code, body


def test_healthz_answers_without_the_database(client):
    with mock.patch.object(connections["default"], "cursor", side_effect=OperationalError("x")):
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_when_every_check_holds(client, alive):
    alive.intent(next_attempt_at=alive.ago(seconds=5))  # due, but well within the limit
    status, body = readyz(client)
    assert status == 200, body
    assert body["status"] == "ready"
    assert body["failed"] == []
    assert all(check["ok"] for check in body["checks"])


def test_database_unreachable(client, alive):
    down = OperationalError('connection to server at "db" failed: password for "app"')
    with mock.patch.object(connections["default"], "cursor", side_effect=down):
        status, body = readyz(client)
    assert status == 503
    assert body["failed"] == ["database", "migrations", "heartbeats", "dispatch_lag"]
    database = body["checks"][0]
    assert database["detail"] == "unreachable (OperationalError); see the log"
    assert "password" not in str(body)  # the public answer names no host or user
    assert body["checks"][1]["detail"] == "skipped: database unreachable"


def test_unapplied_migration(client, alive):
    MigrationRecorder(connection).record_unapplied("observability", "0001_initial")
    status, body = readyz(client)
    assert status == 503
    assert body["failed"] == ["migrations"]
    assert "observability.0001_initial" in body["checks"][1]["detail"]


def test_no_heartbeat_at_all(client, rows):
    status, body = readyz(client)
    assert status == 503
    assert body["failed"] == ["heartbeats"]
    detail = body["checks"][2]["detail"]
    assert "no dispatcher heartbeat ever" in detail
    assert "no worker heartbeat ever" in detail


def test_stale_worker_heartbeat(client, alive, frozen_clock, settings):
    settings.READINESS_MAX_HEARTBEAT_AGE_S = 60
    services.heartbeat(
        worker_id="dispatcher@host:1", kind="dispatcher", now=alive.now + dt.timedelta(seconds=70)
    )
    frozen_clock.advance(70)  # the worker's beat is now 73 s old, the dispatcher's fresh
    status, body = readyz(client)
    assert status == 503
    assert body["failed"] == ["heartbeats"]
    assert body["checks"][2]["detail"] == "youngest worker heartbeat is 73 s old (limit 60 s)"


def test_dispatch_lag_over_the_limit(client, alive, settings):
    settings.READINESS_MAX_DISPATCH_LAG_S = 60
    alive.intent(next_attempt_at=alive.ago(seconds=61))
    alive.intent(next_attempt_at=alive.now + dt.timedelta(hours=1))  # scheduled: no lag
    status, body = readyz(client)
    assert status == 503
    assert body["failed"] == ["dispatch_lag"]
    assert body["checks"][3]["detail"] == "oldest due intent waits 61.0 s (limit 60 s)"


def test_scheduled_and_in_flight_intents_are_not_lag(client, alive):
    alive.intent(next_attempt_at=alive.now + dt.timedelta(minutes=5))
    alive.intent(status="in_flight", lease_expires_at=alive.now + dt.timedelta(seconds=30))
    status, body = readyz(client)
    assert status == 200, body


def test_heartbeat_updates_one_row_per_worker(rows):
    services.heartbeat(worker_id="w1", kind="worker", info={"pid": 1}, now=rows.ago(seconds=9))
    services.heartbeat(worker_id="w1", kind="worker", info={"pid": 2}, now=rows.now)
    row = WorkerHeartbeat.objects.get()
    assert (row.worker_id, row.seen_at, row.info) == ("w1", rows.now, {"pid": 2})


def test_heartbeat_defaults_to_the_database_clock(rows):
    services.heartbeat(worker_id="w1", kind="dispatcher")
    assert WorkerHeartbeat.objects.get().seen_at == rows.now


def test_dispatcher_tick_beats_and_pings_the_workers(rows, monkeypatch):
    """django-q2 runs in sync mode here, so the ping task runs at once, as a worker would."""
    ticks = iter([100.0, 101.0, 200.0])
    monkeypatch.setattr(services, "_throttle", services.Throttle(monotonic=lambda: next(ticks)))
    services.dispatcher_tick(worker_id="dispatcher@host:9")
    kinds = dict(WorkerHeartbeat.objects.values_list("kind", "worker_id"))
    assert kinds["dispatcher"] == "dispatcher@host:9"
    assert kinds["worker"].startswith("worker@")
    WorkerHeartbeat.objects.all().delete()
    services.dispatcher_tick(worker_id="dispatcher@host:9")  # 1 s later: throttled
    assert not WorkerHeartbeat.objects.exists()
    services.dispatcher_tick(worker_id="dispatcher@host:9")  # 100 s later: beats again
    assert WorkerHeartbeat.objects.count() == 2


def test_pre_execute_heartbeat_is_skipped_in_sync_mode(rows):
    services.worker_heartbeat_if_due(sender="django_q", func=None, task={})
    assert not WorkerHeartbeat.objects.exists()


def test_pre_execute_heartbeat_in_a_cluster_worker(rows, monkeypatch):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(services, "_throttle", services.Throttle(monotonic=lambda: 5.0))
    services.worker_heartbeat_if_due(sender="django_q", func=None, task={})
    services.worker_heartbeat_if_due(sender="django_q", func=None, task={})  # throttled
    row = WorkerHeartbeat.objects.get()
    assert row.kind == "worker"
    assert row.seen_at == rows.now


def test_ensure_schedules_is_idempotent(db):
    from django_q.models import Schedule

    assert sorted(services.ensure_schedules()) == sorted(
        [
            services.HEARTBEAT_SCHEDULE_NAME,
            services.PURGE_SCHEDULE_NAME,
            services.RECONCILE_SCHEDULE_NAME,
        ]
    )
    first = {s.name: (s.id, s.next_run) for s in Schedule.objects.all()}
    Schedule.objects.create(name=services.PURGE_SCHEDULE_NAME, func="stale.duplicate")
    Schedule.objects.filter(name=services.HEARTBEAT_SCHEDULE_NAME).update(minutes=30)
    assert services.ensure_schedules() == []
    schedules = {s.name: s for s in Schedule.objects.all()}
    assert len(schedules) == Schedule.objects.count() == 3
    assert {name: (s.id, s.next_run) for name, s in schedules.items()} == first
    purge = schedules[services.PURGE_SCHEDULE_NAME]
    assert (purge.func, purge.schedule_type) == (
        "portal.observability.tasks.purge_retention", Schedule.HOURLY
    )  # fmt: skip
    assert schedules[services.HEARTBEAT_SCHEDULE_NAME].minutes == 1
    assert schedules[services.RECONCILE_SCHEDULE_NAME].func == (
        "portal.observability.tasks.reconcile_timeouts_task"
    )


def test_ensure_schedules_command_creates_this_apps_schedules(db):
    from io import StringIO

    from django.core.management import call_command
    from django_q.models import Schedule

    out = StringIO()
    call_command("ensure_schedules", stdout=out)
    names = set(Schedule.objects.values_list("name", flat=True))
    assert {
        services.PURGE_SCHEDULE_NAME,
        services.RECONCILE_SCHEDULE_NAME,
        services.HEARTBEAT_SCHEDULE_NAME,
    } <= names
    assert f"schedule: {services.PURGE_SCHEDULE_NAME}" in out.getvalue()


def test_the_dispatcher_loop_reports_its_heartbeat(rows, monkeypatch):
    """``run_dispatcher`` beats while it runs, so /readyz sees it (and pings the workers)."""
    from intents.dispatch import Dispatcher

    monkeypatch.setattr(services, "_throttle", services.Throttle())
    dispatcher = Dispatcher(worker_id="dispatcher@test:1", inline=True, idle_poll_s=0)

    def step_once() -> int:
        dispatcher.stop_event.set()
        return 0

    monkeypatch.setattr(dispatcher, "step", step_once)
    dispatcher.run()
    beats = dict(WorkerHeartbeat.objects.values_list("worker_id", "kind"))
    assert beats["dispatcher@test:1"] == "dispatcher"
    assert "worker" in beats.values()  # the ping ran as a task (sync in tests)
