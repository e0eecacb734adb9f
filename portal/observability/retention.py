"""Retention: purge what has outlived its use, in bounded batches, never the audit history.

What goes, in this order:

1. Dead letters that are finished (``replayed``, ``resolved`` or ``discarded``) and past
   their ``retention_until``, with their evidence rows, the evidence files in storage,
   and their items in finished replay requests. A dead letter still named by a replay
   request that is not finished stays.
2. Terminal intents finished more than ``RETENTION_INTENT_DAYS`` ago, with their
   attempts, unless a dead letter still refers to them (so an intent whose dead letter
   is open, or in a replay, or not yet past its retention, is kept). An intent's
   idempotency key lives exactly as long as the intent row.
3. Heartbeats of processes not seen for ``HEARTBEAT_RETENTION``.

Audit events are never touched (their model refuses deletion anyway). Replay requests
themselves are kept: they are small and record who decided what.

The deletes are the apps' own (``deadletters.services.retention``, ``intents.retention``);
this module orders them, bounds the batches and audits the run (``retention.purged``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

from django.conf import settings
from django.db.models import QuerySet

from deadletters.selectors import dead_letters_keeping_their_intent, purgeable_dead_letters
from deadletters.services.retention import dead_letters_purge, dead_letters_purge_count
from intents.models import Intent
from intents.retention import intents_purge, intents_purge_count, purgeable_intents
from portal import clock
from portal.audit.services import Actor, audit_record
from portal.sql_limits import IN_LIST_CHUNK

from . import metrics
from .logging import get_logger
from .models import WorkerHeartbeat

logger = get_logger(__name__)

HEARTBEAT_RETENTION = dt.timedelta(days=7)
DEFAULT_BATCH_SIZE = IN_LIST_CHUNK  # ids per DELETE


@dataclasses.dataclass
class RetentionReport:
    dry_run: bool
    now: dt.datetime
    intent_cutoff: dt.datetime
    dead_letters: int = 0
    evidence: int = 0
    evidence_files: int = 0
    replay_items: int = 0
    intents: int = 0
    attempts: int = 0
    heartbeats: int = 0
    complete: bool = True  # False when max_batches stopped the run early

    def counts(self) -> dict[str, int]:
        return {
            "dead_letters": self.dead_letters,
            "evidence": self.evidence,
            "evidence_files": self.evidence_files,
            "replay_items": self.replay_items,
            "intents": self.intents,
            "attempts": self.attempts,
            "heartbeats": self.heartbeats,
        }


def _intent_candidates(report: RetentionReport, *, dead_letters_purged: bool) -> QuerySet[Intent]:
    kept = dead_letters_keeping_their_intent(now=report.now, purged=dead_letters_purged)
    return purgeable_intents(cutoff=report.intent_cutoff, kept_by=kept)


def stale_heartbeats(*, now: dt.datetime) -> QuerySet[WorkerHeartbeat]:
    return WorkerHeartbeat.objects.filter(seen_at__lt=now - HEARTBEAT_RETENTION)


def retention_purge(
    *,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_batches: int | None = None,
) -> RetentionReport:
    """Purge (or with ``dry_run`` only count) everything past retention."""
    now = clock.db_now()
    report = RetentionReport(
        dry_run=dry_run,
        now=now,
        intent_cutoff=now - dt.timedelta(days=settings.RETENTION_INTENT_DAYS),
    )
    if dry_run:
        _count_only(report)
        return report
    budget = _Budget(max_batches)
    _purge_dead_letters(report, batch_size, budget)
    _purge_intents(report, batch_size, budget)
    report.heartbeats = stale_heartbeats(now=now).delete()[0]
    report.complete = not budget.exhausted
    deleted = {kind: n for kind, n in report.counts().items() if n}
    if deleted:
        for kind, n in deleted.items():
            metrics.RETENTION_PURGED.labels(kind=kind).inc(n)
        audit_record(
            actor=Actor.system("retention"),
            action="retention.purged",
            data={**deleted, "intent_cutoff": report.intent_cutoff.isoformat()},
        )
    logger.info("retention.purged", complete=report.complete, **report.counts())
    return report


def _count_only(report: RetentionReport) -> None:
    would = dead_letters_purge_count(now=report.now)
    report.dead_letters = would.dead_letters
    report.evidence = would.evidence
    report.evidence_files = would.evidence_files
    report.replay_items = would.replay_items
    candidates = _intent_candidates(report, dead_letters_purged=False)
    report.intents, report.attempts = intents_purge_count(candidates=candidates)
    report.heartbeats = stale_heartbeats(now=report.now).count()


class _Budget:
    def __init__(self, max_batches: int | None) -> None:
        self.left = max_batches
        self.exhausted = False

    def take(self) -> bool:
        if self.left is None:
            return True
        if self.left <= 0:
            self.exhausted = True
            return False
        self.left -= 1
        return True


def _batches(
    next_ids: Callable[[], list[int]], delete: Callable[[list[int]], int], budget: _Budget
) -> None:
    while budget.take():
        ids = next_ids()
        if not ids or delete(ids) == 0:
            return


def _purge_dead_letters(report: RetentionReport, batch_size: int, budget: _Budget) -> None:
    def next_ids() -> list[int]:
        qs = purgeable_dead_letters(now=report.now).order_by("id")
        return list(qs.values_list("id", flat=True)[:batch_size])

    def delete(ids: list[int]) -> int:
        purged = dead_letters_purge(ids=ids, now=report.now)
        report.dead_letters += purged.dead_letters
        report.evidence += purged.evidence
        report.evidence_files += purged.evidence_files
        report.replay_items += purged.replay_items
        return purged.dead_letters

    _batches(next_ids, delete, budget)


def _purge_intents(report: RetentionReport, batch_size: int, budget: _Budget) -> None:
    candidates = _intent_candidates(report, dead_letters_purged=True)

    def next_ids() -> list[int]:
        return list(candidates.order_by("id").values_list("id", flat=True)[:batch_size])

    def delete(ids: list[int]) -> int:
        intents, attempts = intents_purge(ids=ids, candidates=candidates)
        report.intents += intents
        report.attempts += attempts
        return intents

    _batches(next_ids, delete, budget)
