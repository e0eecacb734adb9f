"""Operations on dead letters, their evidence and four-eyes replay requests.

Plain functions with keyword-only arguments, one transaction each, refusing with a
domain error; every operator action writes its audit event in the transaction of the
change. Step-up codes are checked *before* the transaction opens (see
``portal.accounts.stepup``): a wrong code's throttling must stick even though the
action is refused.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.validators import URLValidator
from django.db import transaction
from django_q.tasks import async_task

from intents.models import Intent
from intents.services import intent_reopen
from portal import clock
from portal.accounts.roles import (
    APPROVERS,
    OPERATORS,
    has_role,
    require_any_role,
    require_role,
    require_tenant_visible,
)
from portal.accounts.stepup import verify_step_up
from portal.audit.services import Actor, audit_record
from portal.errors import DomainError, InvalidRequest, PermissionDenied
from portal.observability.metrics import DEAD_LETTERS, REPLAYS
from portal.sql_limits import IN_LIST_CHUNK
from portal.timefmt import format_instant

from . import selectors
from .errors import (
    AlreadyInReplay,
    InvalidTransition,
    NothingToReplay,
    ReplayRequestExpired,
    ReplayRequestNotFound,
    SelfApprovalRefused,
)
from .evidence_files import check_upload
from .models import (
    UNSETTLED_STATUSES,
    DeadLetter,
    DeadLetterStatus,
    Evidence,
    EvidenceKind,
    ReplayItem,
    ReplayItemOutcome,
    ReplayRequest,
    ReplayStatus,
)
from .selectors import ReplayFilters

logger = logging.getLogger("deadletters")

_CHUNK = IN_LIST_CHUNK
MAX_NOTE_CHARS = 10_000
MAX_REASON_CHARS = 2_000

# ---------------------------------------------------------------------------------------
# Creation from the engine's hook


def dead_letters_create_for(*, intents: Iterable[Intent], now: dt.datetime) -> list[DeadLetter]:
    """One open dead letter per (intent, generation) that has none yet.

    Called by the ``intents_dead_lettered`` receiver inside the engine's recording
    transaction, so the dead letters commit or roll back with the intents' new state.
    """
    candidates = {
        (intent.pk, intent.generation): intent
        for intent in intents
        if intent.dead_letter_reason is not None
    }
    if not candidates:
        return []
    intent_ids = sorted({intent_id for intent_id, _ in candidates})
    existing: set[tuple[int, int]] = set()
    retention_until = now + dt.timedelta(days=settings.DEAD_LETTER_RETENTION_DAYS)
    with transaction.atomic():
        for start in range(0, len(intent_ids), _CHUNK):
            existing.update(
                DeadLetter.objects.filter(
                    intent_id__in=intent_ids[start : start + _CHUNK]
                ).values_list("intent_id", "generation")
            )
        rows = [
            DeadLetter(
                intent_id=intent.pk,
                tenant_id=intent.tenant_id,
                target_key=intent.target_key,
                generation=intent.generation,
                reason_code=intent.dead_letter_reason or intent.reason_code,
                status=DeadLetterStatus.OPEN,
                retention_until=retention_until,
                created_at=now,
                updated_at=now,
            )
            for key, intent in sorted(candidates.items())
            if key not in existing
        ]
        DeadLetter.objects.bulk_create(rows, batch_size=100)

        def count() -> None:
            for row in rows:
                DEAD_LETTERS.labels(reason=row.reason_code).inc()

        transaction.on_commit(count)
    return rows


# ---------------------------------------------------------------------------------------
# Dead-letter handling


def _require_text(value: Any, *, name: str, max_chars: int) -> str:
    text = str(value or "").strip()
    if not text:
        raise InvalidRequest(f"A {name} is required.")
    if len(text) > max_chars:
        raise InvalidRequest(f"The {name} is longer than {max_chars} characters.")
    return text


def _lock_dead_letter(*, dead_letter: DeadLetter, actor: Any) -> DeadLetter:
    require_role(actor, OPERATORS)
    require_tenant_visible(actor, dead_letter.tenant_id)
    return DeadLetter.objects.select_for_update().get(pk=dead_letter.pk)


def dead_letter_assign(
    *,
    dead_letter: DeadLetter,
    actor: Any,
    assignee: Any | None,
    ip_address: str | None = None,
) -> DeadLetter:
    """Give a dead letter to an operator (``None`` takes it back) while it is unsettled."""
    if assignee is not None and not (
        assignee.is_active and assignee.is_staff and has_role(assignee, OPERATORS)
    ):
        raise InvalidRequest(f"{assignee.get_username()} is not an active operator.")
    with transaction.atomic():
        locked = _lock_dead_letter(dead_letter=dead_letter, actor=actor)
        if locked.status not in UNSETTLED_STATUSES:
            raise InvalidTransition(f"Dead letter {locked.public_id} is already {locked.status}.")
        if assignee is not None:
            require_tenant_visible(assignee, locked.tenant_id)
        previous = locked.assignee.get_username() if locked.assignee else None
        locked.assignee = assignee
        locked.updated_at = clock.now()
        locked.save(update_fields=["assignee", "updated_at"])
        audit_record(
            actor=Actor.user(actor),
            action="dead_letter.assigned",
            object_type="dead_letter",
            object_id=str(locked.public_id),
            data={
                "assignee": assignee.get_username() if assignee else None,
                "previous": previous,
            },
            ip_address=ip_address,
        )
    return locked


def _close(
    *,
    dead_letter: DeadLetter,
    actor: Any,
    reason: str,
    status: DeadLetterStatus,
    action: str,
    ip_address: str | None,
) -> DeadLetter:
    text = _require_text(reason, name="reason", max_chars=MAX_REASON_CHARS)
    with transaction.atomic():
        locked = _lock_dead_letter(dead_letter=dead_letter, actor=actor)
        if locked.status != DeadLetterStatus.OPEN:
            hint = (
                " (decide its replay request first)"
                if locked.status == DeadLetterStatus.REPLAY_PENDING
                else ""
            )
            raise InvalidTransition(
                f"Only open dead letters can be {status}; {locked.public_id} is "
                f"{locked.status}{hint}."
            )
        locked.status = status
        locked.updated_at = clock.now()
        locked.save(update_fields=["status", "updated_at"])
        audit_record(
            actor=Actor.user(actor),
            action=action,
            object_type="dead_letter",
            object_id=str(locked.public_id),
            data={"reason": text, "intent": str(locked.intent.public_id)},
            ip_address=ip_address,
        )
    return locked


def dead_letter_resolve(
    *, dead_letter: DeadLetter, actor: Any, reason: str, ip_address: str | None = None
) -> DeadLetter:
    """Close an open dead letter as handled outside a replay (``open`` → ``resolved``)."""
    return _close(
        dead_letter=dead_letter,
        actor=actor,
        reason=reason,
        status=DeadLetterStatus.RESOLVED,
        action="dead_letter.resolved",
        ip_address=ip_address,
    )


def dead_letter_discard(
    *, dead_letter: DeadLetter, actor: Any, reason: str, ip_address: str | None = None
) -> DeadLetter:
    """Close an open dead letter as not worth delivering (``open`` → ``discarded``)."""
    return _close(
        dead_letter=dead_letter,
        actor=actor,
        reason=reason,
        status=DeadLetterStatus.DISCARDED,
        action="dead_letter.discarded",
        ip_address=ip_address,
    )


# ---------------------------------------------------------------------------------------
# Evidence (append-only)


def _evidence_insert(
    *,
    dead_letter: DeadLetter,
    actor: Any,
    evidence: Evidence,
    audit_data: dict[str, Any],
    ip_address: str | None,
) -> Evidence:
    with transaction.atomic():
        locked = _lock_dead_letter(dead_letter=dead_letter, actor=actor)
        evidence.dead_letter = locked
        evidence.created_by = actor
        evidence.created_at = clock.now()
        evidence.save(force_insert=True)
        audit_record(
            actor=Actor.user(actor),
            action="evidence.added",
            object_type="dead_letter",
            object_id=str(locked.public_id),
            data={"evidence_id": evidence.pk, "kind": evidence.kind, **audit_data},
            ip_address=ip_address,
        )
    return evidence


def evidence_add_note(
    *, dead_letter: DeadLetter, actor: Any, text: str, ip_address: str | None = None
) -> Evidence:
    note = _require_text(text, name="note", max_chars=MAX_NOTE_CHARS)
    return _evidence_insert(
        dead_letter=dead_letter,
        actor=actor,
        evidence=Evidence(kind=EvidenceKind.NOTE, note=note),
        audit_data={"length": len(note)},
        ip_address=ip_address,
    )


_LINK_VALIDATOR = URLValidator(schemes=["http", "https"])


def evidence_add_link(
    *,
    dead_letter: DeadLetter,
    actor: Any,
    url: str,
    title: str = "",
    ip_address: str | None = None,
) -> Evidence:
    """A link (ticket, incident, runbook); only http and https URLs are accepted."""
    link = str(url or "").strip()
    max_length = Evidence._meta.get_field("url").max_length or 0
    if len(link) > max_length:
        raise InvalidRequest(f"The link is longer than {max_length} characters.")
    try:
        _LINK_VALIDATOR(link)
    except ValidationError:
        raise InvalidRequest("Enter a full http:// or https:// link.") from None
    description = str(title or "").strip()[:MAX_NOTE_CHARS]
    return _evidence_insert(
        dead_letter=dead_letter,
        actor=actor,
        evidence=Evidence(kind=EvidenceKind.LINK, url=link, note=description),
        audit_data={"url": link},
        ip_address=ip_address,
    )


def evidence_add_file(
    *,
    dead_letter: DeadLetter,
    actor: Any,
    upload: Any,
    ip_address: str | None = None,
) -> Evidence:
    """Store a vetted file under a server-generated name, with its SHA-256 and size."""
    require_role(actor, OPERATORS)
    require_tenant_visible(actor, dead_letter.tenant_id)
    checked = check_upload(upload, max_bytes=settings.EVIDENCE_MAX_BYTES)
    evidence = Evidence(
        kind=EvidenceKind.FILE,
        original_name=checked.original_name,
        content_type=checked.content_type,
        size=checked.size,
        sha256=checked.sha256,
    )
    # The storage name is ours alone: a random hex name with the vetted extension.
    evidence.file.save(
        f"{uuid.uuid4().hex}.{checked.extension}", ContentFile(checked.content), save=False
    )
    stored_name = evidence.file.name
    if not stored_name:  # kept under ``python -O``, unlike an assert
        raise RuntimeError("The evidence storage saved the file without naming it.")
    try:
        return _evidence_insert(
            dead_letter=dead_letter,
            actor=actor,
            evidence=evidence,
            audit_data={
                "name": checked.original_name,
                "sha256": checked.sha256,
                "size": checked.size,
                "content_type": checked.content_type,
            },
            ip_address=ip_address,
        )
    except BaseException:
        evidence.file.storage.delete(stored_name)  # no orphan file for a refused row
        raise


def evidence_file_open(
    *, evidence: Evidence, user: Any, ip_address: str | None = None
) -> File[bytes]:
    """Open an evidence file for a staff download; each read is audited (who read what).

    Evidence may hold customer data from a failed delivery, so reading it is an
    operator action like adding it. Raises ``FileNotFoundError`` (and records nothing)
    when the stored file is gone.
    """
    handle = evidence.file.open("rb")
    audit_record(
        actor=Actor.user(user),
        action="evidence.downloaded",
        object_type="dead_letter",
        object_id=str(evidence.dead_letter.public_id),
        data={
            "evidence_id": evidence.pk,
            "name": evidence.original_name,
            "sha256": evidence.sha256,
        },
        ip_address=ip_address,
    )
    return handle


# ---------------------------------------------------------------------------------------
# Replays


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
    text = _require_text(reason, name="reason", max_chars=MAX_REASON_CHARS)
    if (dead_letter_ids is None) == (filters is None):
        raise InvalidRequest("Give either dead letter ids or filters, not both or neither.")
    ids = (
        None
        if dead_letter_ids is None
        else [str(i).strip() for i in dead_letter_ids if str(i).strip()]
    )
    if ids is not None and not ids:
        raise InvalidRequest("Give at least one dead letter id.")
    with transaction.atomic():
        now = clock.now()
        if ids is not None:
            chosen = _lock_by_ids(ids=ids, user=requested_by)
        else:
            if filters is None:  # ids or filters, checked above
                raise RuntimeError("replay_request_create needs ids or filters.")
            chosen = list(
                selectors.open_dead_letters_matching(
                    filters=filters, user=requested_by
                ).select_for_update()[: settings.REPLAY_MAX_ITEMS + 1]
            )
            if not chosen:
                raise NothingToReplay(f"No open dead letter matches {filters.describe()}.")
        if len(chosen) > settings.REPLAY_MAX_ITEMS:
            raise InvalidRequest(
                f"A request may hold at most {settings.REPLAY_MAX_ITEMS} dead letters; "
                "narrow the filters."
            )
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
        changed = _set_status(pks, DeadLetterStatus.REPLAY_PENDING, now, only=DeadLetterStatus.OPEN)
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
                "dead_letters": [str(dl.public_id) for dl in chosen[:100]],
                "expires_at": request.expires_at.isoformat(),
            },
            ip_address=ip_address,
        )
    return request


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


def _set_status(pks: list[int], status: str, now: dt.datetime, *, only: str | None = None) -> int:
    changed = 0
    for start in range(0, len(pks), _CHUNK):
        rows = DeadLetter.objects.filter(pk__in=pks[start : start + _CHUNK])
        if only is not None:
            rows = rows.filter(status=only)
        changed += rows.update(status=status, updated_at=now)
    return changed


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
    text = _require_text(reason, name="reason for the rejection", max_chars=MAX_REASON_CHARS)
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
    return _set_status(pks, DeadLetterStatus.OPEN, now, only=DeadLetterStatus.REPLAY_PENDING)


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
