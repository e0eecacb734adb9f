"""Replay requests: the plan (a preview of what a filter matches) and the request itself.

Deciding and expiring a request: ``replay_decisions``; executing it: ``replay_execution``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import transaction

from portal import clock
from portal.accounts.roles import APPROVERS, OPERATORS, require_any_role, require_role
from portal.audit.services import Actor, audit_record
from portal.errors import InvalidRequest

from .. import selectors
from ..errors import AlreadyInReplay, InvalidTransition, NothingToReplay
from ..filters import ReplayFilters
from ..models import DeadLetter, DeadLetterStatus, ReplayItem, ReplayRequest, ReplayStatus
from ._common import MAX_REASON_CHARS, require_text, set_status

AUDITED_IDS = 100  # dead letter ids named in a request's audit event (the count is exact)


@dataclasses.dataclass(frozen=True, slots=True)
class ReplayPlan:
    count: int
    sample: list[DeadLetter]
    #: chosen ids the replay would leave out, each with why
    left_out: list[tuple[str, str]] = dataclasses.field(default_factory=list)


def replay_plan(*, filters: ReplayFilters, user: Any = None) -> ReplayPlan:
    """Preview a replay: how many open dead letters match, and a sample of them.

    ``user`` limits the plan to the tenants they may see; ``None`` (the ``replay``
    command, run with shell access) sees every tenant.
    """
    if user is not None:
        require_any_role(user, (OPERATORS, APPROVERS))
    count, sample = selectors.replay_plan_sample(filters=filters, user=user)
    left_out = selectors.chosen_dead_letters_left_out(filters=filters, user=user)
    return ReplayPlan(count=count, sample=sample, left_out=left_out)


def replay_request_create(
    *,
    requested_by: Any,
    reason: str,
    dead_letter_ids: Iterable[Any] | None = None,
    filters: ReplayFilters | None = None,
    ip_address: str | None = None,
) -> ReplayRequest:
    """Ask for a replay of the given dead letters, or of every open one matching ``filters``.

    The dead letters become ``replay_pending``; one already held by a pending request,
    or otherwise not open, is refused by name.
    """
    require_role(requested_by, OPERATORS)
    text = require_text(reason, name="reason", max_chars=MAX_REASON_CHARS)
    ids = _requested_ids(dead_letter_ids, filters)
    with transaction.atomic():
        now = clock.now()
        chosen = _lock_chosen(ids=ids, filters=filters, user=requested_by)
        request = ReplayRequest.objects.create(
            reason=text,
            filters=filters.to_json() if filters is not None else {},
            status=ReplayStatus.PENDING,
            requested_by=requested_by,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=settings.REPLAY_REQUEST_TTL_S),
        )
        ReplayItem.objects.bulk_create(
            [ReplayItem(request=request, dead_letter=dl) for dl in chosen], batch_size=200
        )
        pks = [dl.pk for dl in chosen]
        changed = set_status(pks, DeadLetterStatus.REPLAY_PENDING, now, only=DeadLetterStatus.OPEN)
        if changed != len(pks):  # the rows are locked and were open: this cannot move
            raise InvalidTransition("Some dead letters changed while the request was made.")
        audit_record(
            actor=Actor.user(requested_by),
            action="replay.requested",
            object_type="replay_request",
            object_id=str(request.public_id),
            data={
                "reason": text,
                "filters": request.filters,
                "count": len(chosen),
                "dead_letters": [str(dl.public_id) for dl in chosen[:AUDITED_IDS]],
                "expires_at": request.expires_at.isoformat(),
            },
            ip_address=ip_address,
        )
    return request


def _requested_ids(
    dead_letter_ids: Iterable[Any] | None, filters: ReplayFilters | None
) -> list[str] | None:
    """The ids asked for (``None``: by filters); refuses both, neither, or an empty list."""
    if (dead_letter_ids is None) == (filters is None):
        raise InvalidRequest("Give either dead letter ids or filters, not both or neither.")
    if dead_letter_ids is None:
        return None
    ids = [str(i).strip() for i in dead_letter_ids if str(i).strip()]
    if not ids:
        raise InvalidRequest("Give at least one dead letter id.")
    return ids


def _lock_chosen(
    *, ids: list[str] | None, filters: ReplayFilters | None, user: Any
) -> list[DeadLetter]:
    """Lock the dead letters a request will hold: the ids given, or the open ones matching
    ``filters``; refuses more than ``REPLAY_MAX_ITEMS``."""
    if ids is not None:
        chosen = _lock_by_ids(ids=ids, user=user)
    elif filters is not None:
        chosen = list(
            selectors.open_dead_letters_matching(filters=filters, user=user).select_for_update()[
                : settings.REPLAY_MAX_ITEMS + 1
            ]
        )
        if not chosen:
            raise NothingToReplay(f"No open dead letter matches {filters.describe()}.")
    else:  # _requested_ids refused this already
        raise RuntimeError("replay_request_create needs ids or filters.")
    if len(chosen) > settings.REPLAY_MAX_ITEMS:
        raise InvalidRequest(
            f"A request may hold at most {settings.REPLAY_MAX_ITEMS} dead letters; "
            "narrow the filters."
        )
    return chosen


def _lock_by_ids(*, ids: list[str], user: Any) -> list[DeadLetter]:
    found, missing = selectors.dead_letters_by_public_ids(
        public_ids=ids, user=user, for_update=True
    )
    if missing:
        raise InvalidRequest(f"No dead letter {', '.join(missing[:10])}.")
    pending = [dl for dl in found if dl.status == DeadLetterStatus.REPLAY_PENDING]
    if pending:
        holders = ReplayItem.objects.filter(
            dead_letter__in=pending, request__status=ReplayStatus.PENDING
        ).values_list("dead_letter__public_id", "request__public_id")
        named = ", ".join(f"{dl} (request {req})" for dl, req in holders[:10])
        raise AlreadyInReplay(f"Already in a pending replay request: {named}.")
    closed = [dl for dl in found if dl.status != DeadLetterStatus.OPEN]
    if closed:
        named = ", ".join(f"{dl.public_id} ({dl.status})" for dl in closed[:10])
        raise InvalidTransition(f"Only open dead letters can be replayed: {named}.")
    return found
