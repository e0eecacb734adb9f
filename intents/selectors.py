"""Read queries of the intents app. The claim queries are the hot path: see the indexes."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from django.db.models import Count, F, IntegerField, OuterRef, QuerySet, Subquery, Window
from django.db.models.functions import Coalesce, RowNumber
from django.db.models.signals import post_delete, post_save

from portal import clock
from portal.accounts.models import Tenant
from portal.observability.logging import REDACTED, redact

from .errors import IntentNotFound
from .models import (
    OPEN_STATUSES,
    Attempt,
    Intent,
    IntentStatus,
    Receipt,
    Target,
    TargetRevision,
)
from .rate_window import RateDecision, windows_count_since

# public_id and correlation_id: for the ``intent.claimed`` log line.
CLAIM_FIELDS = (
    "id",
    "public_id",
    "correlation_id",
    "traceparent",
    "next_attempt_at",
    "attempt_timeout_s",
)


def due_intents_for_claim(*, tenant_id: int, now: dt.datetime, limit: int) -> QuerySet[Intent]:
    """One tenant's due intents, oldest first, locked, skipping rows another worker holds.

    Served by ``intent_due_idx`` (tenant, next_attempt_at) WHERE status = 'pending', so
    its cost does not grow with intents scheduled for later.
    """
    return (
        Intent.objects.select_for_update(skip_locked=True)
        .filter(tenant_id=tenant_id, status=IntentStatus.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .only(*CLAIM_FIELDS)[:limit]
    )


def ranked_due_intents(
    *, tenant_ids: list[int], now: dt.datetime, limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` + 1 due intents of each tenant, oldest first, in one query.

    Each row has ``id``, ``tenant_id``, its rank in its tenant (``rank``, from 1) and
    the tenant's number of due intents (``due``). Not locked: a window function cannot
    be combined with ``FOR UPDATE`` (PostgreSQL), so ``lock_due_intents`` locks the
    chosen ids afterwards. Reads every due intent of these tenants once (the caller
    sends only tenants with a small backlog here; see ``due_tenants.HEAVY_ROWS``).
    """
    ranked = (
        Intent.objects.filter(
            tenant_id__in=tenant_ids, status=IntentStatus.PENDING, next_attempt_at__lte=now
        )
        .annotate(
            rank=Window(
                RowNumber(),
                order_by=[F("next_attempt_at").asc(), F("id").asc()],
                partition_by=[F("tenant_id")],
            ),
            due=Window(Count("id"), partition_by=[F("tenant_id")]),
        )
        .filter(rank__lte=limit + 1)
        .values("id", "tenant_id", "rank", "due")
    )
    return [dict(row) for row in ranked]


def lock_due_intents(*, ids: list[int], now: dt.datetime) -> QuerySet[Intent]:
    """These intents, locked, skipping any another worker holds or claimed meanwhile."""
    return (
        Intent.objects.select_for_update(skip_locked=True)
        .filter(id__in=ids, status=IntentStatus.PENDING, next_attempt_at__lte=now)
        .order_by()
        .only(*CLAIM_FIELDS)
    )


def tenants_with_due_work(*, now: dt.datetime, since: dt.datetime | None = None) -> list[int]:
    """Active tenants with a pending intent due at ``now`` (due after ``since``, if given).

    A range over ``intent_status_due_idx`` (status, next_attempt_at, tenant): it reads
    due intents' index entries, never a row per tenant.
    """
    due = Intent.objects.filter(
        status=IntentStatus.PENDING, next_attempt_at__lte=now, tenant__is_active=True
    )
    if since is not None:
        due = due.filter(next_attempt_at__gt=since)
    return list(due.order_by("tenant_id").values_list("tenant_id", flat=True).distinct())


def expired_leases(*, now: dt.datetime, limit: int) -> QuerySet[Intent]:
    """In-flight intents whose lease ran out (``intent_lease_idx``), locked."""
    return (
        Intent.objects.select_for_update(skip_locked=True)
        .filter(status=IntentStatus.IN_FLIGHT, lease_expires_at__lt=now)
        .order_by("lease_expires_at")[:limit]
    )


def intent_by_idempotency_key(*, tenant_id: int, key: str) -> Intent | None:
    return Intent.objects.filter(tenant_id=tenant_id, idempotency_key=key).first()


# --- The open-intent quota ---------------------------------------------------------
#
# Counting a tenant's open intents reads every one of them (no index makes a count
# O(1)), so each web process keeps, per tenant, one exact count and the time it was
# taken, and bounds the count now from above:
#
#     open now <= open at the count + intents created since (the count - margin)
#
# Intents only become open by being created (or by a replay, see below), so the right
# side never under-counts; closing only makes it looser. The second term is bounded by
# the tenant's rate windows: ``intent_submit`` counts every request in the window of
# its minute inside the transaction that stores its intent, so the windows from the
# one holding (count - margin) on hold at least every intent created since (plus the
# requests refused after counting, which only loosens the bound). Reading them costs
# nothing while the bound starts in the current minute (the intake's window UPDATE
# returns that window's count), else one SELECT of the earlier window's row
# (intents.rate_window.windows_count_since), whatever the backlog or the intake rate.
# Only when the bound reaches the cap, or the count is
# older than OPEN_COUNT_MAX_AGE, is the tenant counted exactly again (reading at most
# ``cap`` rows): a submit is never admitted on an estimate at or above the cap.
#
# The margin covers a creating transaction that committed after the count started
# (its window is the minute of its request, stamped before it commits) and clock skew
# between web machines. A replay re-opens intents without creating them; the process
# that runs it drops its own count, others notice within OPEN_COUNT_MAX_AGE (a replay
# is not checked against the quota either).

OPEN_COUNT_MAX_AGE = dt.timedelta(seconds=5)
OPEN_COUNT_MARGIN = dt.timedelta(seconds=5)


@dataclasses.dataclass(frozen=True, slots=True)
class _OpenCount:
    count: int
    as_of: dt.datetime  # read before the count ran


_open_counts: dict[int, _OpenCount] = {}


def _open_intents_of(tenant: int | OuterRef) -> QuerySet[Intent]:
    """A tenant's open intents: the one definition the quota and the tenant list count."""
    # Internal deliveries (client webhook events) are not the client's: never counted.
    return Intent.objects.filter(
        tenant_id=tenant, status__in=OPEN_STATUSES, internal=False
    ).order_by()


def open_intent_count_exact(*, tenant_id: int, cap: int, besides: int | None = None) -> int:
    """The tenant's open intents (other than the one with id ``besides``), counted up to
    ``cap`` (reads at most ``cap`` rows)."""
    open_intents = _open_intents_of(tenant_id)
    if besides is not None:
        open_intents = open_intents.exclude(pk=besides)
    return open_intents.values("id")[:cap].count()


def open_intent_count_annotation() -> Coalesce:
    """For ``Tenant.objects.annotate(...)``: each tenant's open intents, uncapped, in one
    subquery (so a list can show and sort them without a query per tenant)."""
    counted = (
        _open_intents_of(OuterRef("pk")).values("tenant").annotate(count=Count("pk"))
    ).values("count")
    return Coalesce(Subquery(counted), 0, output_field=IntegerField())


def open_intent_count_reaches(
    *,
    tenant_id: int,
    cap: int,
    counted: RateDecision | None = None,
    besides: int | None = None,
    before_exact_count: Callable[[], None] | None = None,
) -> bool:
    """True when the tenant has at least ``cap`` open intents (see the notes above).

    ``counted``: this transaction's admission in the tenant's rate window (its count is
    then not read again). ``besides``: the id of an intent this transaction inserted,
    left out of the exact count (the intake inserts before it checks). ``before_exact_count``
    runs only when the estimate cannot decide, before the exact count (intake takes the
    tenant's row lock there).
    """
    if cap <= 0:
        return True
    now = clock.now()
    known = _open_counts.get(tenant_id)
    if known is not None and known.as_of <= now < known.as_of + OPEN_COUNT_MAX_AGE:
        headroom = cap - known.count
        if (
            headroom > 0
            and windows_count_since(
                tenant_id=tenant_id, since=known.as_of - OPEN_COUNT_MARGIN, counted=counted
            )
            < headroom
        ):
            return False
    if before_exact_count is not None:
        before_exact_count()
    count = open_intent_count_exact(tenant_id=tenant_id, cap=cap, besides=besides)
    _open_counts[tenant_id] = _OpenCount(count=count, as_of=now)
    return count >= cap


def open_intent_count_forget(*, tenant_id: int) -> None:
    """Drop this process's count, so the next check counts exactly (after a re-open)."""
    _open_counts.pop(tenant_id, None)


# --- Target resolution for submissions ----------------------------------------------
#
# Every submit needs its target and current revision; the registry changes only through
# sync_targets (or the admin). Each process keeps what it read for TARGET_CACHE_MAX_AGE.
# A save of any Target or TargetRevision in this process empties it at once; other
# processes see a change within TARGET_CACHE_MAX_AGE. Only acceptance uses a cached
# entry: an unknown key or an incompatible version is read again before it is refused,
# so a newly synced target or version is never refused for being cached.

TARGET_CACHE_MAX_AGE = 2.0  # seconds


@dataclasses.dataclass(frozen=True, slots=True)
class _CachedTarget:
    target: Target
    read_at: float  # time.monotonic()


_targets: dict[str, _CachedTarget] = {}


def registered_target_keys() -> set[str]:
    """Every target key the registry holds (active or retired)."""
    return set(Target.objects.values_list("key", flat=True))


def active_target_with_revision(*, key: str, fresh: bool = False) -> Target | None:
    """The active target ``key`` with ``current_revision`` loaded, or None."""
    now = time.monotonic()
    cached = _targets.get(key)
    if not fresh and cached is not None and now - cached.read_at < TARGET_CACHE_MAX_AGE:
        return cached.target
    target = (
        Target.objects.select_related("current_revision")
        .filter(key=key, is_active=True, current_revision__isnull=False)
        .first()
    )
    if target is not None:
        _targets[key] = _CachedTarget(target=target, read_at=now)
    else:
        _targets.pop(key, None)
    return target


def intake_caches_clear(**_: object) -> None:
    """Forget every cached target, open-intent count and verified API key of this process."""
    from portal.accounts.authentication import verified_keys

    _targets.clear()
    _open_counts.clear()
    verified_keys.clear()


def _registry_changed(**_: object) -> None:
    _targets.clear()


post_save.connect(_registry_changed, sender=Target, dispatch_uid="intake-target-saved")
post_save.connect(_registry_changed, sender=TargetRevision, dispatch_uid="intake-revision-saved")
post_delete.connect(_registry_changed, sender=Target, dispatch_uid="intake-target-deleted")


def intent_get_for_tenant(*, tenant: Tenant, public_id: object) -> Intent:
    """The tenant's intent; a foreign, unknown, internal or malformed id is simply not
    found."""
    try:
        parsed = uuid.UUID(str(public_id))
    except ValueError:
        raise IntentNotFound(f"No intent {public_id} for this tenant.") from None
    try:
        return Intent.objects.get(tenant=tenant, public_id=parsed, internal=False)
    except Intent.DoesNotExist:
        raise IntentNotFound(f"No intent {public_id} for this tenant.") from None


def intent_list_for_tenant(
    *,
    tenant: Tenant,
    status: str | None = None,
    target: str | None = None,
    created_after: dt.datetime | None = None,
    created_before: dt.datetime | None = None,
) -> QuerySet[Intent]:
    qs = Intent.objects.filter(tenant=tenant, internal=False)
    if status:
        qs = qs.filter(status=status)
    if target:
        qs = qs.filter(target_key=target)
    if created_after:
        qs = qs.filter(created_at__gt=created_after)
    if created_before:
        qs = qs.filter(created_at__lt=created_before)
    return qs.defer("payload", "contract").order_by("-created_at", "-id")


def attempts_for_intent(*, intent: Intent) -> QuerySet[Attempt]:
    return Attempt.objects.filter(intent=intent).order_by("number")


def receipts_for_intent(*, intent: Intent) -> QuerySet[Receipt]:
    """Every generation's receipts, in the order they reached us."""
    return Receipt.objects.filter(intent=intent).order_by("received_at", "id")


def targets_for_tenant(*, tenant: Tenant) -> list[Target]:
    targets = Target.objects.filter(is_active=True, current_revision__isnull=False)
    return [
        t
        for t in targets.select_related("current_revision").order_by("key")
        if tenant.may_use_target(t.key)
    ]


def intent_payload_masked(*, intent: Intent) -> object:
    """The payload for staff screens, masked exactly as the logs mask it (``redact``).

    The contract's ``sensitive_fields`` and secret-looking keys are blanked at any depth.
    The names come from the intent's frozen contract snapshot, so a later registry
    change cannot unmask an old payload. A payload that is not JSON is never shown.
    """
    names = frozenset(
        str(name).lower() for name in (intent.contract or {}).get("sensitive_fields", [])
    )
    try:
        payload = json.loads(bytes(intent.payload).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return REDACTED
    return redact(payload, names)
