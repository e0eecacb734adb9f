"""django-q2 entry points of the operations app; thin, each calls one service."""

from __future__ import annotations

import os

from portal.process import process_worker_id

from .reconciliation import reconcile_timeouts
from .retention import retention_purge
from .services import KIND_WORKER, heartbeat

# One scheduled run deletes at most this many batches, so it ends well inside the
# django-q2 task timeout; the next hourly run carries on where it stopped.
SCHEDULED_MAX_BATCHES = 100


def purge_retention() -> dict[str, int]:
    report = retention_purge(max_batches=SCHEDULED_MAX_BATCHES)
    return {**report.counts(), "complete": int(report.complete)}


def worker_heartbeat() -> None:
    """Run by a cluster worker: proves the cluster takes tasks off its queue."""
    heartbeat(worker_id=process_worker_id(KIND_WORKER), kind=KIND_WORKER, info={"pid": os.getpid()})


def reconcile_timeouts_task() -> dict[str, int]:
    """Ask every gateway that can be asked about intents whose last attempt timed out, and
    record the acceptances it confirms; the rest stay listed for an operator."""
    tally: dict[str, int] = {}
    for item in reconcile_timeouts(resolve=True):
        tally[item.action] = tally.get(item.action, 0) + 1
    return tally
