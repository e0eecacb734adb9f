"""Retention, the intents' part: terminal intents finished before the cutoff go, with their
attempts (``portal.observability.retention`` schedules the batches and audits the run).
An intent's idempotency key lives exactly as long as the intent row."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet

from .models import TERMINAL_STATUSES, Attempt, Intent


def purgeable_intents(*, cutoff: dt.datetime, kept_by: QuerySet[Any]) -> QuerySet[Intent]:
    """Terminal intents finished before ``cutoff`` that no row of ``kept_by`` (a queryset
    of a model with an ``intent`` foreign key, e.g. dead letters still kept) refers to."""
    return Intent.objects.filter(status__in=TERMINAL_STATUSES, finished_at__lt=cutoff).exclude(
        Exists(kept_by.filter(intent=OuterRef("pk")))
    )


def intents_purge_count(*, candidates: QuerySet[Intent]) -> tuple[int, int]:
    """(intents, attempts) that ``intents_purge`` would remove (a dry run)."""
    return candidates.count(), Attempt.objects.filter(intent__in=candidates).count()


def intents_purge(*, ids: list[int], candidates: QuerySet[Intent]) -> tuple[int, int]:
    """Delete those of ``ids`` still among ``candidates``, re-checked under their row
    locks, with their attempts. Returns (intents, attempts) deleted."""
    with transaction.atomic():
        locked = list(
            candidates.filter(id__in=ids).select_for_update().values_list("id", flat=True)
        )
        if not locked:
            return 0, 0
        _, per_model = Intent.objects.filter(id__in=locked).delete()
    return per_model.get(Intent._meta.label, 0), per_model.get(Attempt._meta.label, 0)
