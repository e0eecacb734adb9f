"""Deciding a replay request (four eyes and a step-up code) and expiring undecided ones."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django_q.tasks import async_task

from portal import clock
from portal.accounts.roles import APPROVERS, require_role, require_tenant_visible
from portal.accounts.stepup import verify_step_up
from portal.audit.services import Actor, audit_record
from portal.errors import PermissionDenied
from portal.observability.metrics import REPLAYS
from portal.timefmt import format_instant

from .. import selectors
from ..errors import (
    InvalidTransition,
    ReplayRequestExpired,
    ReplayRequestNotFound,
    SelfApprovalRefused,
)
from ..models import DeadLetterStatus, ReplayItemOutcome, ReplayRequest, ReplayStatus
from ._common import MAX_REASON_CHARS, require_text, set_status


def _check_decider(*, request: ReplayRequest, approver: Any, now: dt.datetime) -> None:
    """Everything that refuses a decision without spending the approver's code."""
    require_role(approver, APPROVERS)
    if request.requested_by_id == approver.pk:
        raise SelfApprovalRefused("You requested this replay; a different approver must decide it.")
    if request.status != ReplayStatus.PENDING:
        raise InvalidTransition(f"Replay request {request.public_id} is already {request.status}.")
    if request.expires_at <= now:
        raise ReplayRequestExpired(
            f"Replay request {request.public_id} expired at "
            f"{format_instant(request.expires_at)}; ask for a new one."
        )
    for tenant_id in selectors.replay_request_tenant_ids(request=request):
        try:
            require_tenant_visible(approver, tenant_id)
        except PermissionDenied:
            raise PermissionDenied(
                "This request covers tenants outside your assigned tenants."
            ) from None


def _precheck_decider(*, request: ReplayRequest, approver: Any) -> None:
    """Refuse before the step-up code is spent, against the request's current state.

    The caller's object may be stale (a page loaded before someone else decided): checking
    it would spend the approver's code on a decision that the locked re-check then refuses.
    """
    current = ReplayRequest.objects.filter(pk=request.pk).first()
    if current is None:
        raise ReplayRequestNotFound(f"No replay request {request.public_id}.")
    _check_decider(request=current, approver=approver, now=clock.now())


def _lock_pending(*, request: ReplayRequest, approver: Any, now: dt.datetime) -> ReplayRequest:
    locked = ReplayRequest.objects.select_for_update().get(pk=request.pk)
    _check_decider(request=locked, approver=approver, now=now)
    return locked


def replay_request_approve(
    *,
    request: ReplayRequest,
    approver: Any,
    otp_token: str,
    ip_address: str | None = None,
) -> ReplayRequest:
    """Four eyes plus step-up: an approver other than the requester, with a fresh code.

    On commit the execution task is queued; it re-opens every intent of the request.
    """
    _precheck_decider(request=request, approver=approver)
    verify_step_up(user=approver, token=otp_token, ip_address=ip_address)
    with transaction.atomic():
        now = clock.now()
        locked = _lock_pending(request=request, approver=approver, now=now)
        locked.status = ReplayStatus.APPROVED
        locked.decided_by = approver
        locked.decided_at = now
        locked.save(update_fields=["status", "decided_by", "decided_at"])
        audit_record(
            actor=Actor.user(approver),
            action="replay.approved",
            object_type="replay_request",
            object_id=str(locked.public_id),
            data={"requested_by": locked.requested_by.get_username(), "step_up": True},
            ip_address=ip_address,
        )
        request_id = locked.pk
        transaction.on_commit(lambda: async_task("deadletters.tasks.replay_execute", request_id))
    return locked


def replay_request_reject(
    *,
    request: ReplayRequest,
    approver: Any,
    otp_token: str,
    reason: str,
    ip_address: str | None = None,
) -> ReplayRequest:
    """Refuse a request (same four-eyes and step-up rules); its dead letters re-open."""
    text = require_text(reason, name="reason for the rejection", max_chars=MAX_REASON_CHARS)
    _precheck_decider(request=request, approver=approver)
    verify_step_up(user=approver, token=otp_token, ip_address=ip_address)
    with transaction.atomic():
        now = clock.now()
        locked = _lock_pending(request=request, approver=approver, now=now)
        locked.status = ReplayStatus.REJECTED
        locked.decided_by = approver
        locked.decided_at = now
        locked.decision_reason = text
        locked.finished_at = now
        locked.save(
            update_fields=["status", "decided_by", "decided_at", "decision_reason", "finished_at"]
        )
        released = _release_items(request=locked, now=now, detail="request rejected")
        audit_record(
            actor=Actor.user(approver),
            action="replay.rejected",
            object_type="replay_request",
            object_id=str(locked.public_id),
            data={
                "reason": text,
                "requested_by": locked.requested_by.get_username(),
                "dead_letters_reopened": released,
                "step_up": True,
            },
            ip_address=ip_address,
        )
        transaction.on_commit(lambda: REPLAYS.labels(outcome=ReplayStatus.REJECTED).inc())
    return locked


def _release_items(*, request: ReplayRequest, now: dt.datetime, detail: str) -> int:
    """Items of an undecided request: skipped; their dead letters back to ``open``."""
    pending_items = request.items.filter(outcome=ReplayItemOutcome.PENDING)
    pks = list(pending_items.values_list("dead_letter_id", flat=True))
    pending_items.update(outcome=ReplayItemOutcome.SKIPPED, detail=detail)
    return set_status(pks, DeadLetterStatus.OPEN, now, only=DeadLetterStatus.REPLAY_PENDING)


def replay_requests_expire(*, now: dt.datetime | None = None) -> int:
    """Pending requests past ``expires_at`` become ``expired``; their dead letters re-open."""
    now = now or clock.now()
    expired = 0
    for request_id in list(
        selectors.expired_pending_requests(now=now).values_list("pk", flat=True)
    ):
        with transaction.atomic():
            locked = ReplayRequest.objects.select_for_update().get(pk=request_id)
            if locked.status != ReplayStatus.PENDING or locked.expires_at > now:
                continue  # decided meanwhile
            locked.status = ReplayStatus.EXPIRED
            locked.finished_at = now
            locked.save(update_fields=["status", "finished_at"])
            released = _release_items(request=locked, now=now, detail="request expired")
            audit_record(
                actor=Actor.system("replay_expiry"),
                action="replay.expired",
                object_type="replay_request",
                object_id=str(locked.public_id),
                data={
                    "requested_by": locked.requested_by.get_username(),
                    "expires_at": locked.expires_at.isoformat(),
                    "dead_letters_reopened": released,
                },
            )
            transaction.on_commit(lambda: REPLAYS.labels(outcome=ReplayStatus.EXPIRED).inc())
            expired += 1
    return expired
