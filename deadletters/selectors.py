"""Read queries of the dead-letter app: dead letters, evidence, replay requests, history.

Every list a staff user sees goes through ``tenant_ids_visible_to``: operators restricted
to some tenants never see, plan, request or decide another tenant's dead letters.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from intents.models import IntentStatus
from portal.accounts.roles import OPERATORS, restrict_to_visible_tenants, tenant_ids_visible_to
from portal.audit.models import AuditEvent
from portal.sql_limits import IN_LIST_CHUNK

from .errors import DeadLetterNotFound, ReplayRequestNotFound
from .filters import ReplayFilters
from .models import (
    SETTLED_STATUSES,
    DeadLetter,
    DeadLetterStatus,
    Evidence,
    ReplayItem,
    ReplayItemOutcome,
    ReplayRequest,
    ReplayStatus,
)


def dead_letters_visible_to(user: Any) -> QuerySet[DeadLetter]:
    queryset = DeadLetter.objects.all()
    if user is None:  # management commands: shell access is the platform's own
        return queryset
    return restrict_to_visible_tenants(queryset, user, tenant_field="tenant")


def dead_letter_get(*, public_id: Any, user: Any = None) -> DeadLetter:
    """One dead letter by its public id; ``DeadLetterNotFound`` when unknown or not visible."""
    try:
        key = public_id if isinstance(public_id, uuid.UUID) else uuid.UUID(str(public_id))
    except ValueError:
        raise DeadLetterNotFound(f"No dead letter {public_id}.") from None
    queryset = dead_letters_visible_to(user).select_related("intent", "tenant", "assignee")
    found = queryset.filter(public_id=key).first()
    if found is None:
        raise DeadLetterNotFound(f"No dead letter {public_id}.")
    return found


def open_dead_letters_matching(*, filters: ReplayFilters, user: Any = None) -> QuerySet[DeadLetter]:
    """Open dead letters (not in any pending request) matching ``filters``, oldest first."""
    queryset = dead_letters_visible_to(user).filter(status=DeadLetterStatus.OPEN)
    if filters.reason_code:
        queryset = queryset.filter(reason_code=filters.reason_code)
    if filters.target_key:
        queryset = queryset.filter(target_key=filters.target_key)
    if filters.tenant_id is not None:
        queryset = queryset.filter(tenant_id=filters.tenant_id)
    if filters.since is not None:
        queryset = queryset.filter(created_at__gte=filters.since)
    if filters.until is not None:
        queryset = queryset.filter(created_at__lt=filters.until)
    if filters.dead_letter_ids:
        queryset = queryset.filter(public_id__in=filters.dead_letter_ids)
    return queryset.order_by("created_at", "id")


def chosen_dead_letters_left_out(
    *, filters: ReplayFilters, user: Any = None
) -> list[tuple[str, str]]:
    """The chosen ids a plan cannot replay, each with why (not open, in a request, unknown)."""
    if not filters.dead_letter_ids:
        return []
    found = {
        dead_letter.public_id: dead_letter
        for dead_letter in dead_letters_visible_to(user).filter(
            public_id__in=filters.dead_letter_ids
        )
    }
    holders = dict(
        ReplayItem.objects.filter(
            dead_letter__public_id__in=filters.dead_letter_ids,
            request__status=ReplayStatus.PENDING,
        ).values_list("dead_letter__public_id", "request__public_id")
    )
    left_out: list[tuple[str, str]] = []
    for key in filters.dead_letter_ids:
        dead_letter = found.get(key)
        if dead_letter is None:
            left_out.append((str(key), "no such dead letter"))
        elif key in holders:
            left_out.append((str(key), f"already in pending replay request {holders[key]}"))
        elif dead_letter.status != DeadLetterStatus.OPEN:
            left_out.append((str(key), f"{dead_letter.status}, not open"))
    return left_out


def replay_plan_sample(*, filters: ReplayFilters, user: Any = None) -> tuple[int, list[DeadLetter]]:
    """How many open dead letters match, and the first few of them."""
    matching = open_dead_letters_matching(filters=filters, user=user)
    sample_size = settings.REPLAY_PLAN_SAMPLE_SIZE
    sample = list(matching.select_related("intent", "tenant")[:sample_size])
    count = len(sample) if len(sample) < sample_size else matching.count()
    return count, sample


def dead_letters_by_public_ids(
    *, public_ids: list[Any], user: Any = None, for_update: bool = False
) -> tuple[list[DeadLetter], list[str]]:
    """The visible dead letters with these ids, and the ids that matched none."""
    keys: dict[uuid.UUID, str] = {}
    missing: list[str] = []
    for raw in public_ids:
        try:
            keys[uuid.UUID(str(raw).strip())] = str(raw).strip()
        except ValueError:
            missing.append(str(raw))
    queryset = dead_letters_visible_to(user)
    if for_update:
        queryset = queryset.select_for_update()
    found: list[DeadLetter] = []
    key_list = list(keys)
    for start in range(0, len(key_list), IN_LIST_CHUNK):
        found.extend(
            queryset.filter(public_id__in=key_list[start : start + IN_LIST_CHUNK]).order_by("id")
        )
    seen = {dead_letter.public_id for dead_letter in found}
    missing.extend(text for key, text in keys.items() if key not in seen)
    return found, missing


# A finished replay request no longer needs its dead letters.
FINISHED_REPLAY_STATUSES = (ReplayStatus.DONE, ReplayStatus.REJECTED, ReplayStatus.EXPIRED)


def purgeable_dead_letters(*, now: dt.datetime) -> QuerySet[DeadLetter]:
    """Settled dead letters past ``retention_until`` that no unfinished replay names."""
    in_unfinished_replay = ReplayItem.objects.filter(dead_letter=OuterRef("pk")).exclude(
        request__status__in=FINISHED_REPLAY_STATUSES
    )
    return DeadLetter.objects.filter(status__in=SETTLED_STATUSES, retention_until__lt=now).exclude(
        Exists(in_unfinished_replay)
    )


def dead_letters_keeping_their_intent(*, now: dt.datetime, purged: bool) -> QuerySet[DeadLetter]:
    """Dead letters that keep their intent from retention: every one left once the
    purgeable ones are ``purged``; before that (a dry run), those the purge would keep."""
    kept = DeadLetter.objects.all()
    if not purged:
        kept = kept.exclude(pk__in=purgeable_dead_letters(now=now).values("pk"))
    return kept


def replay_holds_dead_letter_of(*, intent_id: int, generation: int) -> bool:
    """Whether a pending replay request holds the dead letter of this intent generation."""
    return DeadLetter.objects.filter(
        intent_id=intent_id, generation=generation, status=DeadLetterStatus.REPLAY_PENDING
    ).exists()


def evidence_for(*, dead_letter: DeadLetter) -> QuerySet[Evidence]:
    return dead_letter.evidence.select_related("created_by").order_by("created_at", "id")


def evidence_get(*, pk: int, user: Any) -> Evidence | None:
    """One evidence row whose dead letter ``user`` may see, or None."""
    return (
        Evidence.objects.select_related("dead_letter")
        .filter(pk=pk, dead_letter__in=dead_letters_visible_to(user))
        .first()
    )


def dead_letter_history(*, dead_letter: DeadLetter) -> list[AuditEvent]:
    """The audit events about this dead letter, oldest first."""
    return list(
        AuditEvent.objects.filter(
            object_type="dead_letter", object_id=str(dead_letter.public_id)
        ).order_by("sequence")
    )


def replay_items_for_dead_letter(*, dead_letter: DeadLetter) -> QuerySet[ReplayItem]:
    return (
        ReplayItem.objects.filter(dead_letter=dead_letter)
        .select_related("request", "request__requested_by", "request__decided_by")
        .order_by("request__created_at")
    )


def replay_requests_visible_to(user: Any) -> QuerySet[ReplayRequest]:
    """Requests all of whose dead letters ``user`` may see."""
    queryset = ReplayRequest.objects.all()
    if user is None:
        return queryset
    visible = tenant_ids_visible_to(user)
    if visible is None:
        return queryset
    foreign = ReplayItem.objects.exclude(dead_letter__tenant_id__in=visible)
    return queryset.exclude(pk__in=foreign.values("request_id"))


def replay_request_get(*, public_id: Any, user: Any = None) -> ReplayRequest:
    try:
        key = public_id if isinstance(public_id, uuid.UUID) else uuid.UUID(str(public_id))
    except ValueError:
        raise ReplayRequestNotFound(f"No replay request {public_id}.") from None
    found = (
        replay_requests_visible_to(user)
        .select_related("requested_by", "decided_by")
        .filter(public_id=key)
        .first()
    )
    if found is None:
        raise ReplayRequestNotFound(f"No replay request {public_id}.")
    return found


def replay_requests_awaiting_decision(*, user: Any, now: dt.datetime) -> QuerySet[ReplayRequest]:
    """The approvals queue: pending, unexpired requests that someone else asked for."""
    return (
        replay_requests_visible_to(user)
        .filter(status=ReplayStatus.PENDING, expires_at__gt=now)
        .exclude(requested_by=user)
        .select_related("requested_by")
        .annotate(item_count=Count("items"))
        .order_by("created_at")
    )


def replay_request_items(*, request: ReplayRequest) -> QuerySet[ReplayItem]:
    return request.items.select_related(
        "dead_letter", "dead_letter__intent", "dead_letter__tenant"
    ).order_by("id")


def replay_request_outcome_counts(*, request: ReplayRequest) -> dict[str, int]:
    rows = request.items.values("outcome").annotate(n=Count("id")).order_by()
    return {row["outcome"]: row["n"] for row in rows}


def expired_pending_requests(*, now: dt.datetime) -> QuerySet[ReplayRequest]:
    return ReplayRequest.objects.filter(status=ReplayStatus.PENDING, expires_at__lte=now).order_by(
        "expires_at"
    )


def replay_request_tenant_ids(*, request: ReplayRequest) -> set[int]:
    return set(request.items.values_list("dead_letter__tenant_id", flat=True).distinct())


def assignable_users() -> QuerySet[Any]:
    """Users a dead letter may be assigned to: active staff holding the operators role."""
    return (
        get_user_model()
        .objects.filter(
            Q(groups__name=OPERATORS) | Q(is_superuser=True), is_active=True, is_staff=True
        )
        .distinct()
        .order_by("username")
    )


def replay_requests_with_item_counts(*, user: Any) -> QuerySet[ReplayRequest]:
    """The replay requests ``user`` may see, for a list: people joined, items counted."""
    return (
        replay_requests_visible_to(user)
        .select_related("requested_by", "decided_by")
        .annotate(item_count=Count("items"))
    )


@dataclasses.dataclass(frozen=True, slots=True)
class ReplayItemResult:
    """What became of one replayed dead letter, read from its intent now.

    ``outcome``: ``accepted``; ``failed_again`` (``new_dead_letter`` is the letter of the
    replayed generation); ``delivering`` (still pending or in flight); ``cancelled``;
    ``skipped`` (``detail`` says why); ``pending`` (the request is not executed yet).
    """

    item: ReplayItem
    outcome: str
    detail: str = ""
    new_dead_letter: DeadLetter | None = None


#: the outcomes a request page counts, in the order it lists them
RESULT_ORDER = ("accepted", "failed_again", "delivering", "cancelled", "skipped", "pending")


def replay_item_results(*, items: list[ReplayItem]) -> list[ReplayItemResult]:
    """Each item's outcome; ``items`` come with their dead letter and its intent joined."""
    reopened = [item for item in items if item.outcome == ReplayItemOutcome.REOPENED]
    intent_ids = sorted({item.dead_letter.intent_id for item in reopened})
    later_letters: dict[tuple[int, int], DeadLetter] = {}
    for start in range(0, len(intent_ids), IN_LIST_CHUNK):
        for letter in DeadLetter.objects.filter(
            intent_id__in=intent_ids[start : start + IN_LIST_CHUNK]
        ):
            later_letters[(letter.intent_id, letter.generation)] = letter
    return [_result(item, later_letters) for item in items]


def _result(item: ReplayItem, later_letters: dict[tuple[int, int], DeadLetter]) -> ReplayItemResult:
    if item.outcome != ReplayItemOutcome.REOPENED:
        return ReplayItemResult(item=item, outcome=item.outcome, detail=item.detail)
    intent = item.dead_letter.intent
    replayed_generation = item.dead_letter.generation + 1  # intent_reopen's next generation
    again = later_letters.get((intent.pk, replayed_generation))
    if again is not None:
        return ReplayItemResult(
            item=item,
            outcome="failed_again",
            detail=f"generation {replayed_generation}: {again.reason_code}",
            new_dead_letter=again,
        )
    if intent.generation != replayed_generation:  # cannot happen without a dead letter
        return ReplayItemResult(
            item=item, outcome="delivering", detail=f"intent at generation {intent.generation}"
        )
    if intent.status == IntentStatus.ACCEPTED:
        return ReplayItemResult(
            item=item, outcome="accepted", detail=f"generation {replayed_generation} delivered"
        )
    if intent.status == IntentStatus.CANCELLED:
        return ReplayItemResult(item=item, outcome="cancelled", detail="cancelled by the client")
    return ReplayItemResult(
        item=item,
        outcome="delivering",
        detail=f"generation {replayed_generation} is {intent.status}",
    )


def replay_result_counts(results: list[ReplayItemResult]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for result in results:
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
    return [(outcome, counts[outcome]) for outcome in RESULT_ORDER if outcome in counts]


def index_counts(*, user: Any) -> dict[str, int | None]:
    """The admin index's numbers: open dead letters the user may see, and requests awaiting
    their decision; ``None`` for what their roles do not show."""
    from portal import clock
    from portal.accounts.roles import APPROVERS, has_role

    may_see_letters = has_role(user, OPERATORS) or has_role(user, APPROVERS)
    return {
        "open_dead_letters": (
            dead_letters_visible_to(user).filter(status=DeadLetterStatus.OPEN).count()
            if may_see_letters
            else None
        ),
        "awaiting_decision": (
            replay_requests_awaiting_decision(user=user, now=clock.now()).count()
            if has_role(user, APPROVERS)
            else None
        ),
    }
