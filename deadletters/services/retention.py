"""Retention, the dead letters' part: settled dead letters past ``retention_until`` go,
with their evidence rows, evidence files and replay items (``portal.observability
.retention`` schedules the batches and audits the run)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from django.db import transaction

from ..models import DeadLetter, Evidence, ReplayItem
from ..selectors import purgeable_dead_letters

logger = logging.getLogger("deadletters")


@dataclasses.dataclass
class DeadLettersPurged:
    dead_letters: int = 0
    evidence: int = 0
    evidence_files: int = 0  # files deleted from storage (counted once the rows are gone)
    replay_items: int = 0


def dead_letters_purge_count(*, now: dt.datetime) -> DeadLettersPurged:
    """What ``dead_letters_purge`` would remove now (a dry run)."""
    dead_letters = purgeable_dead_letters(now=now)
    evidence = Evidence.objects.filter(dead_letter__in=dead_letters)
    return DeadLettersPurged(
        dead_letters=dead_letters.count(),
        evidence=evidence.count(),
        evidence_files=evidence.exclude(file="").count(),
        replay_items=ReplayItem.objects.filter(dead_letter__in=dead_letters).count(),
    )


def dead_letters_purge(*, ids: list[int], now: dt.datetime) -> DeadLettersPurged:
    """Delete those of ``ids`` still purgeable, re-checked under their row locks.

    Files go only once the rows are gone for good; a failure leaves an orphan file
    (logged), never a row pointing at a missing file.
    """
    purged = DeadLettersPurged()
    with transaction.atomic():
        locked = list(
            purgeable_dead_letters(now=now)
            .filter(id__in=ids)
            .select_for_update()
            .values_list("id", flat=True)
        )
        if not locked:
            return purged
        evidence = Evidence.objects.filter(dead_letter_id__in=locked)
        files = [name for name in evidence.values_list("file", flat=True) if name]
        purged.evidence = evidence.delete()[0]
        purged.replay_items = ReplayItem.objects.filter(dead_letter_id__in=locked).delete()[0]
        purged.dead_letters = DeadLetter.objects.filter(id__in=locked).delete()[0]
        transaction.on_commit(lambda: _delete_files(files, purged))
    return purged


def _delete_files(names: list[str], purged: DeadLettersPurged) -> None:
    storage = Evidence._meta.get_field("file").storage
    for name in names:
        try:
            storage.delete(name)
        except OSError as exc:
            logger.warning("retention: evidence file %s not deleted: %s", name, exc)
            continue
        purged.evidence_files += 1
