"""Executing an approved replay request: each intent re-opened in its own transaction."""

from __future__ import annotations

import logging

from django.db import transaction

from intents.models import Intent
from intents.services import intent_reopen
from portal import clock
from portal.audit.services import Actor, audit_record
from portal.errors import DomainError
from portal.observability.metrics import REPLAYS

from .. import selectors
from ..models import (
    DeadLetter,
    DeadLetterStatus,
    ReplayItem,
    ReplayItemOutcome,
    ReplayRequest,
    ReplayStatus,
)

logger = logging.getLogger("deadletters")


def replay_execute(*, request_id: int) -> ReplayRequest:
    """Re-open every intent of an approved request; safe to run again after a crash.

    Each item is its own transaction: the intent is re-opened with a new generation,
    fresh budget and deadline (``intent_reopen``) and its dead letter becomes
    ``replayed``; an intent that is no longer dead-lettered at that generation is
    skipped and its dead letter re-opened for a person to decide.
    """
    with transaction.atomic():
        request = ReplayRequest.objects.select_for_update().get(pk=request_id)
        if request.status == ReplayStatus.APPROVED:
            request.status = ReplayStatus.EXECUTING
            request.save(update_fields=["status"])
        elif request.status != ReplayStatus.EXECUTING:  # done already, or never approved
            logger.info("replay %s is %s; nothing to execute", request.public_id, request.status)
            return request
    item_ids = list(
        request.items.filter(outcome=ReplayItemOutcome.PENDING)
        .order_by("id")
        .values_list("pk", flat=True)
    )
    for item_id in item_ids:
        _execute_item(item_id=item_id)
    with transaction.atomic():
        request = ReplayRequest.objects.select_for_update().get(pk=request_id)
        if request.status != ReplayStatus.EXECUTING:
            return request
        now = clock.now()
        request.status = ReplayStatus.DONE
        request.finished_at = now
        request.save(update_fields=["status", "finished_at"])
        counts = selectors.replay_request_outcome_counts(request=request)
        audit_record(
            actor=Actor.system("replay_execute"),
            action="replay.executed",
            object_type="replay_request",
            object_id=str(request.public_id),
            data={
                "reopened": counts.get(ReplayItemOutcome.REOPENED, 0),
                "skipped": counts.get(ReplayItemOutcome.SKIPPED, 0),
                "approved_by": request.decided_by.get_username() if request.decided_by else None,
            },
        )
        transaction.on_commit(lambda: REPLAYS.labels(outcome=ReplayStatus.DONE).inc())
    return request


def _execute_item(*, item_id: int) -> None:
    with transaction.atomic():
        item = ReplayItem.objects.select_for_update().get(pk=item_id)
        if item.outcome != ReplayItemOutcome.PENDING:  # a concurrent run did it
            return
        dead_letter = DeadLetter.objects.select_for_update().get(pk=item.dead_letter_id)
        intent = Intent.objects.only("pk", "public_id", "status", "generation").get(
            pk=dead_letter.intent_id
        )
        now = clock.now()
        skip = None
        if intent.generation != dead_letter.generation:
            skip = f"intent is at generation {intent.generation} now"
        else:
            try:
                reopened = intent_reopen(intent=intent, now=now)
            except DomainError as exc:  # AlreadyTerminal: re-opened by another path
                skip = exc.detail[: ReplayItem._meta.get_field("detail").max_length]
        if skip is None:
            item.outcome = ReplayItemOutcome.REOPENED
            item.detail = f"re-opened as generation {reopened.generation}"
            dead_letter.status = DeadLetterStatus.REPLAYED
        else:
            item.outcome = ReplayItemOutcome.SKIPPED
            item.detail = skip
            dead_letter.status = DeadLetterStatus.OPEN
        item.save(update_fields=["outcome", "detail"])
        dead_letter.updated_at = now
        dead_letter.save(update_fields=["status", "updated_at"])
