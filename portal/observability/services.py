"""Operations writes: worker heartbeats and the django-q2 schedules this app owns.

Retention lives in ``retention.py`` and reconciliation in ``reconciliation.py``.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction

from portal import clock
from portal.process import process_worker_id
from portal.sql_limits import column_width

from .logging import get_logger
from .models import WorkerHeartbeat

logger = get_logger(__name__)

KIND_DISPATCHER = "dispatcher"
KIND_WORKER = "worker"

PURGE_SCHEDULE_NAME = "observability.purge_retention"
HEARTBEAT_SCHEDULE_NAME = "observability.worker_heartbeat"
RECONCILE_SCHEDULE_NAME = "observability.reconcile_timeouts"


def heartbeat(
    *,
    worker_id: str,
    kind: str,
    info: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> None:
    """Record that ``worker_id`` is alive now (database clock). One UPDATE when it exists."""
    worker_id = worker_id[: column_width(WorkerHeartbeat, "worker_id")]
    values = {
        "kind": kind[: column_width(WorkerHeartbeat, "kind")],
        "seen_at": now or clock.db_now(),
        "info": info or {},
    }
    if WorkerHeartbeat.objects.filter(worker_id=worker_id).update(**values):
        return
    try:
        with transaction.atomic():
            WorkerHeartbeat.objects.create(worker_id=worker_id, **values)
    except IntegrityError:  # another call for the same id created it first
        WorkerHeartbeat.objects.filter(worker_id=worker_id).update(**values)


def heartbeat_interval_s() -> float:
    """How often to beat so /readyz never sees a live process as stale."""
    return max(float(settings.READINESS_MAX_HEARTBEAT_AGE_S) / 4, 1.0)


class Throttle:
    """Allows an action at most once per ``interval_s`` of a monotonic clock."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self._last: dict[str, float] = {}

    def due(self, key: str, interval_s: float) -> bool:
        now = self.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < interval_s:
            return False
        self._last[key] = now
        return True


_throttle = Throttle()


def dispatcher_tick(*, worker_id: str, info: dict[str, Any] | None = None) -> None:
    """Call once per dispatcher loop turn; cheap when nothing is due.

    Every ``heartbeat_interval_s`` it records the dispatcher's heartbeat and queues a
    ``worker_heartbeat`` task, so an idle django-q2 cluster still proves it consumes its
    queue (django-q2's own scheduler runs only about twice a minute).
    """
    if not _throttle.due(f"dispatcher:{worker_id}", heartbeat_interval_s()):
        return
    try:
        heartbeat(worker_id=worker_id, kind=KIND_DISPATCHER, info=info)
    except DatabaseError:
        logger.warning("heartbeat.failed", worker_id=worker_id, kind=KIND_DISPATCHER)
        return
    from django_q.tasks import async_task

    async_task("portal.observability.tasks.worker_heartbeat", task_name="worker heartbeat")


def worker_heartbeat_if_due(**_signal_kwargs: Any) -> None:
    """django-q2 ``pre_execute`` receiver: a busy worker beats without waiting for a ping.

    Throttled per process; never lets a heartbeat failure break the task it precedes.
    Skipped in django-q2's sync mode, where no cluster exists to be alive.
    """
    from django_q.conf import Conf

    if Conf.SYNC:
        return
    worker_id = process_worker_id(KIND_WORKER)
    if not _throttle.due(worker_id, heartbeat_interval_s()):
        return
    try:
        heartbeat(worker_id=worker_id, kind=KIND_WORKER, info={"pid": os.getpid()})
    except DatabaseError:
        logger.warning("heartbeat.failed", worker_id=worker_id, kind=KIND_WORKER)


def ensure_schedules() -> list[str]:
    """Create or update this app's django-q2 schedules; safe to call at every start.

    Returns the names created. An existing schedule keeps its ``next_run``; duplicates
    (two launchers racing) are removed.
    """
    from django_q.models import Schedule

    wanted = {
        PURGE_SCHEDULE_NAME: {
            "func": "portal.observability.tasks.purge_retention",
            "schedule_type": Schedule.HOURLY,
            "minutes": None,
            "repeats": -1,
        },
        RECONCILE_SCHEDULE_NAME: {
            "func": "portal.observability.tasks.reconcile_timeouts_task",
            "schedule_type": Schedule.MINUTES,
            "minutes": 5,
            "repeats": -1,
        },
        HEARTBEAT_SCHEDULE_NAME: {
            "func": "portal.observability.tasks.worker_heartbeat",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    }
    created = []
    with transaction.atomic():
        for name, fields in wanted.items():
            existing = list(Schedule.objects.filter(name=name).order_by("id"))
            if not existing:
                Schedule.objects.create(name=name, **fields)
                created.append(name)
                continue
            keep, extras = existing[0], existing[1:]
            if extras:
                Schedule.objects.filter(id__in=[s.id for s in extras]).delete()
            changed = [key for key, value in fields.items() if getattr(keep, key) != value]
            if changed:
                for key in changed:
                    setattr(keep, key, fields[key])
                keep.save(update_fields=changed)
    return created
