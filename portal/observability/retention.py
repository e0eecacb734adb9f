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
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet

from deadletters.models import (
    SETTLED_STATUSES,
    DeadLetter,
    Evidence,
    ReplayItem,
    ReplayStatus,
)
from intents.models import TERMINAL_STATUSES, Attempt, Intent
from portal import clock
from portal.audit.services import Actor, audit_record
from portal.sql_limits import IN_LIST_CHUNK

from . import metrics
from .logging import get_logger
from .models import WorkerHeartbeat

logger = get_logger(__name__)

FINISHED_DEAD_LETTER_STATUSES = SETTLED_STATUSES
FINISHED_REPLAY_STATUSES = (ReplayStatus.DONE, ReplayStatus.REJECTED, ReplayStatus.EXPIRED)
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


def purgeable_dead_letters(*, now: dt.datetime) -> QuerySet[DeadLetter]:
    in_unfinished_replay = ReplayItem.objects.filter(dead_letter=OuterRef("pk")).exclude(
        request__status__in=FINISHED_REPLAY_STATUSES
    )
    return DeadLetter.objects.filter(
        status__in=FINISHED_DEAD_LETTER_STATUSES, retention_until__lt=now
    ).exclude(Exists(in_unfinished_replay))


def purgeable_intents(
    *, now: dt.datetime, cutoff: dt.datetime, dead_letters_purged: bool
) -> QuerySet[Intent]:
    """Terminal intents finished before ``cutoff`` that no kept dead letter refers to.

    ``dead_letters_purged``: the purgeable dead letters are already gone, so any dead
    letter left keeps its intent. Otherwise (dry run) count those that would be gone.
    """
    kept = DeadLetter.objects.filter(intent=OuterRef("pk"))
    if not dead_letters_purged:
        kept = kept.exclude(pk__in=purgeable_dead_letters(now=now).values("pk"))
    return Intent.objects.filter(status__in=TERMINAL_STATUSES, finished_at__lt=cutoff).exclude(
        Exists(kept)
    )


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
    dead_letters = purgeable_dead_letters(now=report.now)
    evidence = Evidence.objects.filter(dead_letter__in=dead_letters)
    intents = purgeable_intents(
        now=report.now, cutoff=report.intent_cutoff, dead_letters_purged=False
    )
    report.dead_letters = dead_letters.count()
    report.evidence = evidence.count()
    report.evidence_files = evidence.exclude(file="").count()
    report.replay_items = ReplayItem.objects.filter(dead_letter__in=dead_letters).count()
    report.intents = intents.count()
    report.attempts = Attempt.objects.filter(intent__in=intents).count()
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
        with transaction.atomic():
            # Re-check under the lock: a dead letter may have changed since it was listed.
            locked = list(
                purgeable_dead_letters(now=report.now)
                .filter(id__in=ids)
                .select_for_update()
                .values_list("id", flat=True)
            )
            if not locked:
                return 0
            evidence = Evidence.objects.filter(dead_letter_id__in=locked)
            files = [name for name in evidence.values_list("file", flat=True) if name]
            report.evidence += evidence.delete()[0]
            report.replay_items += ReplayItem.objects.filter(dead_letter_id__in=locked).delete()[0]
            deleted = DeadLetter.objects.filter(id__in=locked).delete()[0]
            report.dead_letters += deleted
            # Files go only once the rows are gone for good; a failure leaves an orphan
            # file (logged), never a row pointing at a missing file.
            transaction.on_commit(lambda: _delete_files(files, report))
        return deleted

    _batches(next_ids, delete, budget)


def _delete_files(names: list[str], report: RetentionReport) -> None:
    storage = Evidence._meta.get_field("file").storage
    for name in names:
        try:
            storage.delete(name)
        except OSError as exc:
            logger.warning("retention.evidence_file_not_deleted", file=name, error=str(exc))
            continue
        report.evidence_files += 1


def _purge_intents(report: RetentionReport, batch_size: int, budget: _Budget) -> None:
    def candidates() -> QuerySet[Intent]:
        return purgeable_intents(
            now=report.now, cutoff=report.intent_cutoff, dead_letters_purged=True
        )

    def next_ids() -> list[int]:
        return list(candidates().order_by("id").values_list("id", flat=True)[:batch_size])

    def delete(ids: list[int]) -> int:
        with transaction.atomic():
            locked = list(
                candidates().filter(id__in=ids).select_for_update().values_list("id", flat=True)
            )
            if not locked:
                return 0
            _, per_model = Intent.objects.filter(id__in=locked).delete()
        report.intents += per_model.get(Intent._meta.label, 0)
        report.attempts += per_model.get(Attempt._meta.label, 0)
        return per_model.get(Intent._meta.label, 0)

    _batches(next_ids, delete, budget)
