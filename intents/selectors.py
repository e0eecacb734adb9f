"""Read queries of the intents app. The claim queries are the hot path: see the indexes."""

from __future__ import annotations

import datetime as dt
import uuid

from django.db.models import QuerySet

from portal.accounts.models import Tenant

from .errors import IntentNotFound
from .models import Attempt, Intent, IntentStatus, Target

# public_id and correlation_id: for the ``intent.claimed`` log line.
CLAIM_FIELDS = ("id", "public_id", "correlation_id", "next_attempt_at", "attempt_timeout_s")


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


def expired_leases(*, now: dt.datetime, limit: int) -> QuerySet[Intent]:
    """In-flight intents whose lease ran out (``intent_lease_idx``), locked."""
    return (
        Intent.objects.select_for_update(skip_locked=True)
        .filter(status=IntentStatus.IN_FLIGHT, lease_expires_at__lt=now)
        .order_by("lease_expires_at")[:limit]
    )


def intent_by_idempotency_key(*, tenant_id: int, key: str) -> Intent | None:
    return Intent.objects.filter(tenant_id=tenant_id, idempotency_key=key).first()


def open_intent_count_reaches(*, tenant_id: int, cap: int) -> bool:
    """True when the tenant has at least ``cap`` open intents; reads at most ``cap`` rows."""
    if cap <= 0:
        return True
    return (
        Intent.objects.filter(
            tenant_id=tenant_id, status__in=(IntentStatus.PENDING, IntentStatus.IN_FLIGHT)
        )
        .order_by()
        .values("id")[cap - 1 : cap]
        .exists()
    )


def intent_get_for_tenant(*, tenant: Tenant, public_id: object) -> Intent:
    """The tenant's intent; a foreign, unknown or malformed id is simply not found."""
    try:
        parsed = uuid.UUID(str(public_id))
    except ValueError:
        raise IntentNotFound(f"No intent {public_id} for this tenant.") from None
    try:
        return Intent.objects.get(tenant=tenant, public_id=parsed)
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
    qs = Intent.objects.filter(tenant=tenant)
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


def targets_for_tenant(*, tenant: Tenant) -> list[Target]:
    targets = Target.objects.filter(is_active=True, current_revision__isnull=False)
    return [
        t
        for t in targets.select_related("current_revision").order_by("key")
        if tenant.may_use_target(t.key)
    ]


MASKED = "••• masked •••"


def _mask(value: object, names: frozenset[str]) -> object:
    if isinstance(value, dict):
        return {key: MASKED if key in names else _mask(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask(item, names) for item in value]
    return value


def intent_payload_masked(*, intent: Intent) -> object:
    """The payload for staff screens: the contract's ``sensitive_fields`` masked at any depth.

    The names come from the intent's frozen contract snapshot, so a later registry
    change cannot unmask an old payload. A payload that is not JSON is never shown.
    """
    import json

    names = frozenset(str(name) for name in (intent.contract or {}).get("sensitive_fields", []))
    try:
        payload = json.loads(bytes(intent.payload).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return MASKED
    return _mask(payload, names)
