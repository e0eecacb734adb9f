"""Operations that change intents: submit, cancel, re-open. One transaction each."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from portal import clock
from portal.accounts.models import Tenant
from portal.errors import DomainError, InvalidRequest
from portal.observability import lifecycle, tracing
from portal.observability.metrics import INTENTS_CREATED

from .errors import (
    AlreadyTerminal,
    ContractIncompatible,
    IdempotencyKeyInvalid,
    IdempotencyKeyReused,
    IntentNotFound,
    PayloadInvalid,
    QuotaExceeded,
    RateLimited,
    TargetNotAllowed,
    TargetUnknown,
)
from .intake_insert import insert_intent
from .models import Intent, IntentStatus, ReasonCode, Target
from .rate_window import RateDecision, rate_window_hit
from .registry import VERSION_PATTERN, is_compatible, payload_errors
from .selectors import (
    active_target_with_revision,
    intent_by_idempotency_key,
    intent_get_for_tenant,
    open_intent_count_forget,
    open_intent_count_reaches,
)
from .signals import intents_changed
from .suppressions import recipient_suppressed_check
from .transitions import FINISHED_FIELDS, LEASE_FIELDS, finish, release_lease


@dataclasses.dataclass(frozen=True, slots=True)
class SubmitResult:
    intent: Intent
    created: bool


def validate_idempotency_key(key: Any) -> str:
    """1 to 255 printable ASCII characters (CONTRACT.md)."""
    if not isinstance(key, str) or not 1 <= len(key) <= 255:
        raise IdempotencyKeyInvalid("Idempotency-Key must be 1 to 255 printable ASCII characters.")
    if not (key.isascii() and key.isprintable()):  # = every character in 0x20-0x7E
        raise IdempotencyKeyInvalid("Idempotency-Key may only hold printable ASCII characters.")
    return key


def canonical_payload(payload: Any) -> bytes:
    """The payload's stored bytes: key order and spacing never make two requests differ."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def effective_contract(contract: dict[str, Any], tenant: Tenant) -> dict[str, Any]:
    """The target's contract with the tenant's retry overrides applied within bounds."""
    overrides = tenant.retry_overrides or {}
    if not overrides:
        return contract
    retry = dict(contract["retry"])
    for name, (low, high) in settings.TENANT_RETRY_BOUNDS.items():
        if name in overrides:
            value = type(retry[name])(overrides[name])
            retry[name] = min(max(value, low), high)
    retry["max_delay_s"] = max(retry["max_delay_s"], retry["initial_delay_s"])
    return {**contract, "retry": retry, "tenant_overrides": sorted(overrides)}


@dataclasses.dataclass(frozen=True, slots=True)
class _RequestShape:
    """What a retry with the same idempotency key must repeat exactly: the whole request
    (as Stripe compares it), not only target, version and payload."""

    target_key: str
    requested_version: str
    payload_sha256: str
    metadata: bytes
    deadline_seconds: float | None

    def matches(self, intent: Intent) -> bool:
        return (
            intent.target_key == self.target_key
            and intent.requested_version == self.requested_version
            and intent.payload_sha256 == self.payload_sha256
            and canonical_payload(intent.metadata) == self.metadata
            and intent.requested_deadline_s == self.deadline_seconds
        )


def _replay_or_conflict(existing: Intent, *, request: _RequestShape) -> SubmitResult:
    if request.matches(existing):
        return SubmitResult(intent=existing, created=False)
    raise IdempotencyKeyReused(
        "This Idempotency-Key was already used with a different request (target, version, "
        "payload, metadata or deadline_seconds)."
    )


def _resolve_target(*, tenant: Tenant, target_key: Any, contract_version: Any) -> Target:
    if not isinstance(target_key, str) or not target_key:
        raise InvalidRequest("target must be a non-empty string.")
    target = active_target_with_revision(key=target_key)
    if target is not None and not _compatible(target, contract_version):
        # Maybe cached before a sync raised the version: refuse only on what is stored.
        target = active_target_with_revision(key=target_key, fresh=True)
    if target is None:
        raise TargetUnknown(f"No target {target_key!r} in the registry.")
    if not tenant.may_use_target(target_key):
        raise TargetNotAllowed(f"Target {target_key!r} is not allowed for this tenant.")
    if not _compatible(target, contract_version):
        registry_version = target.revision.version
        raise ContractIncompatible(
            f"Requested contract {contract_version} is not compatible with {target_key} "
            f"{registry_version} (same MAJOR and MINOR <= {registry_version} accepted)."
        )
    return target


def _compatible(target: Target, contract_version: Any) -> bool:
    return contract_version is None or is_compatible(
        registry_version=target.revision.version, requested_version=contract_version
    )


# ``deadline_seconds`` bounds, shared with the API serializer so both refuse the same.
MIN_DEADLINE_SECONDS = 1
MAX_DEADLINE_SECONDS = 366 * 24 * 3600


def json_holds_nul(value: Any) -> bool:
    """True when a key or string anywhere in ``value`` (parsed JSON) holds U+0000."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(json_holds_nul(key) or json_holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(json_holds_nul(item) for item in value)
    return False


def _validate_shape(*, contract_version: Any, deadline_seconds: Any, metadata: Any) -> None:
    if contract_version is not None and (
        not isinstance(contract_version, str) or not VERSION_PATTERN.fullmatch(contract_version)
    ):
        raise InvalidRequest('contract_version must be a string "MAJOR.MINOR".')
    if deadline_seconds is not None and (
        isinstance(deadline_seconds, bool)
        or not isinstance(deadline_seconds, int | float)
        or not MIN_DEADLINE_SECONDS <= deadline_seconds <= MAX_DEADLINE_SECONDS
    ):
        raise InvalidRequest(
            f"deadline_seconds must be a number from {MIN_DEADLINE_SECONDS} to "
            f"{MAX_DEADLINE_SECONDS} seconds.",
            field="deadline_seconds",
        )
    if not isinstance(metadata, dict):
        raise InvalidRequest("metadata must be a JSON object.", field="metadata")
    # Stored as JSON, and PostgreSQL's jsonb refuses U+0000 in any key or string.
    # (The payload is stored as bytes, so it may hold one.)
    if json_holds_nul(metadata):
        raise InvalidRequest("metadata may not contain the character U+0000.", field="metadata")


def intent_submit(
    *,
    tenant: Tenant,
    idempotency_key: Any,
    target_key: Any,
    contract_version: str | None,
    payload: Any,
    deadline_seconds: float | None = None,
    metadata: dict[str, Any] | None = None,
    correlation_id: str = "",
) -> SubmitResult:
    """Store a new intent, or return the one this idempotency key already made."""
    key = validate_idempotency_key(idempotency_key)
    metadata = {} if metadata is None else metadata
    _validate_shape(
        contract_version=contract_version, deadline_seconds=deadline_seconds, metadata=metadata
    )
    payload_bytes = canonical_payload(payload)
    request = _RequestShape(
        target_key=target_key if isinstance(target_key, str) else "",
        requested_version=contract_version or "",
        payload_sha256=hashlib.sha256(payload_bytes).hexdigest(),
        metadata=canonical_payload(metadata),
        deadline_seconds=None if deadline_seconds is None else float(deadline_seconds),
    )

    try:
        target, contract, deadline_s = _admissible(
            tenant=tenant,
            target_key=target_key,
            contract_version=contract_version,
            payload=payload,
            deadline_seconds=deadline_seconds,
        )
    except DomainError as refusal:
        # Any refusal (validation, target, contract, payload): a retried request is
        # answered from what it created, whatever changed since.
        _count_request(tenant)
        return _replay_or_raise(refusal, tenant=tenant, key=key, request=request)

    now = clock.now()
    intent = _pending_intent(
        tenant=tenant,
        key=key,
        target=target,
        contract=contract,
        payload_bytes=payload_bytes,
        metadata=metadata,
        request=request,
        deadline_s=deadline_s,
        correlation_id=correlation_id,
        now=now,
    )
    return _store_or_replay(intent, tenant=tenant, key=key, request=request, now=now)


def _pending_intent(
    *,
    tenant: Tenant,
    key: str,
    target: Target,
    contract: dict[str, Any],
    payload_bytes: bytes,
    metadata: dict[str, Any],
    request: _RequestShape,
    deadline_s: float,
    correlation_id: str,
    now: dt.datetime,
) -> Intent:
    """The new intent's row, due now, not yet saved."""
    revision = target.revision
    return Intent(
        tenant=tenant,
        idempotency_key=key,
        target=target,
        target_key=target.key,
        requested_version=request.requested_version,
        contract_version=revision.version,
        target_revision=revision,
        contract=contract,
        payload=payload_bytes,
        payload_sha256=request.payload_sha256,
        metadata=metadata,
        status=IntentStatus.PENDING,
        max_attempts=contract["retry"]["max_attempts"],
        attempt_timeout_s=contract["attempt_timeout_s"],
        next_attempt_at=now,
        deadline_at=now + dt.timedelta(seconds=deadline_s),
        requested_deadline_s=request.deadline_seconds,
        correlation_id=correlation_id,
        traceparent=tracing.current_traceparent(),
        created_at=now,
        updated_at=now,
    )


def _store_or_replay(
    intent: Intent, *, tenant: Tenant, key: str, request: _RequestShape, now: dt.datetime
) -> SubmitResult:
    """Save the new intent; or, when its key already made one, answer from that one."""
    try:
        _store(intent, tenant=tenant, now=now)
    except IntegrityError:
        # The unique (tenant, idempotency key) index: a retry, or the loser of a race.
        # Its transaction rolled back uncounted: count it on its own.
        _count_request(tenant)
        existing = intent_by_idempotency_key(tenant_id=tenant.pk, key=key)
        if existing is None:
            raise
        return _replay_or_conflict(existing, request=request)
    except QuotaExceeded:
        # Rolled back with its INSERT; counted on its own, like every other refusal. Its
        # key had made no intent: the INSERT would have met it.
        _count_request(tenant)
        raise
    INTENTS_CREATED.labels(tenant=tenant.name, target=intent.target_key).inc()
    lifecycle.submitted(intent)
    return SubmitResult(intent=intent, created=True)


def _store(intent: Intent, *, tenant: Tenant, now: dt.datetime) -> None:
    """The intake transaction: INSERT, count the request, check the quota; or refuse
    (RateLimited, QuotaExceeded, or the IntegrityError of a key already used), rolled
    back whole.

    BEGIN, the INSERT, the rate-window UPDATE (which returns the window's count), COMMIT:
    one commit and, while the quota estimate's bound (the last exact count less its
    margin) lies in the current minute, no other statement (it reads the earlier
    window's row otherwise).

    The INSERT comes first: a new request costs no lookup, since the unique (tenant,
    idempotency key) index tells it from a retry (answered by ``intent_submit`` after
    this transaction rolled back), and only a submit with the same key waits for what it
    holds. The
    UPDATE then locks the tenant's window row until COMMIT, so the submits of one tenant
    are admitted one at a time, each for only the UPDATE and the COMMIT, and each
    estimate sees every earlier admission, its own count included. Only a submit counted
    in the other minute's row, at a minute boundary, can run beside it unseen: the
    estimate admits only with one slot to spare for it, and near the cap the exact count
    is taken under a lock on the tenant's row, which every such count takes. So the
    open-intent quota holds exactly under concurrency (issue 11, finding 7) without a
    second lock on the common path.
    """
    with transaction.atomic():
        insert_intent(intent)
        counted = _count_request(tenant, now=now)
        if open_intent_count_reaches(
            tenant_id=tenant.pk,
            cap=tenant.max_open_intents,
            counted=counted,
            besides=intent.pk,
            before_exact_count=lambda: _tenant_admission_lock(tenant),
        ):
            raise QuotaExceeded(
                f"This tenant already has {tenant.max_open_intents} open intents; "
                "wait for some to finish."
            )


def _count_request(tenant: Tenant, *, now: dt.datetime | None = None) -> RateDecision:
    """Count one submit in the tenant's rate window, or refuse it (429 rate_limited)."""
    decision = rate_window_hit(
        tenant=tenant, limit=tenant.rate_limit_per_minute, now=now or clock.now()
    )
    if not decision.allowed:
        raise RateLimited(
            "Request rate limit for this tenant exceeded; retry after Retry-After seconds.",
            retry_after_s=decision.retry_after_s,
        )
    return decision


def _replay_or_raise(
    refusal: DomainError, *, tenant: Tenant, key: str, request: _RequestShape
) -> SubmitResult:
    existing = intent_by_idempotency_key(tenant_id=tenant.pk, key=key)
    if existing is None:
        raise refusal
    return _replay_or_conflict(existing, request=request)


def _admissible(
    *,
    tenant: Tenant,
    target_key: Any,
    contract_version: str | None,
    payload: Any,
    deadline_seconds: float | None,
) -> tuple[Target, dict[str, Any], float]:
    """The target, the effective contract and the deadline in seconds, or why not.

    Reads nothing from the database while the target is cached: the quota is checked
    in the intake transaction (``_store``).
    """
    target = _resolve_target(
        tenant=tenant, target_key=target_key, contract_version=contract_version
    )
    revision = target.revision
    # Pointers into the request body, like every other 4xx's `errors`.
    errors = [
        {**error, "pointer": "/payload" + error["pointer"]}
        for error in payload_errors(revision.contract, revision.checksum, payload)
    ]
    if errors:
        raise PayloadInvalid("The payload does not match the target's schema.", errors=errors)
    recipient_suppressed_check(tenant=tenant, channel=revision.gateway, payload=payload)
    contract = effective_contract(revision.contract, tenant)
    deadline_s = contract["acceptance_deadline_s"]
    if deadline_seconds is not None:
        if deadline_seconds > deadline_s:
            raise InvalidRequest(
                f"deadline_seconds may only shorten the target's deadline of {deadline_s:g} s."
            )
        deadline_s = float(deadline_seconds)
    return target, contract, deadline_s


def _tenant_admission_lock(tenant: Tenant) -> None:
    """Hold the tenant's row until the surrounding transaction ends (PostgreSQL: FOR
    UPDATE; SQL Server: UPDLOCK, ROWLOCK; SQLite serialises every writer anyway).

    No deadlock with the INSERT before it: PostgreSQL checks the intent's foreign keys
    (Django declares them DEFERRABLE INITIALLY DEFERRED) at COMMIT, so a submit waiting
    for the window row holds no lock on the tenant's row.
    """
    Tenant.objects.select_for_update().filter(pk=tenant.pk).values_list("pk").first()


def intent_cancel(*, tenant: Tenant, public_id: object) -> Intent:
    """Cancel a pending intent at once; mark an in-flight one cancel-requested."""
    intent = intent_get_for_tenant(tenant=tenant, public_id=public_id)
    with transaction.atomic():
        intent = Intent.objects.select_for_update().get(pk=intent.pk)
        if intent.is_terminal:
            raise AlreadyTerminal(f"Intent {intent.public_id} is already {intent.status}.")
        now = clock.now()
        if intent.status == IntentStatus.PENDING:  # no lease to release: nobody holds it
            finish(
                intent,
                status=IntentStatus.CANCELLED,
                reason_code=ReasonCode.CANCELLED_BY_CLIENT,
                now=now,
            )
            intent.cancel_requested = True
            intent.save(update_fields=[*FINISHED_FIELDS, "cancel_requested"])
            intents_changed.send(sender=Intent, changes=[(intent, "cancelled")], now=now)
        else:  # in flight: the worker's recording finishes it
            intent.cancel_requested = True
            intent.updated_at = now
            intent.save(update_fields=["cancel_requested", "updated_at"])
    lifecycle.cancel_recorded(intent)
    return intent


# What a re-open rewrites (the rest of the intent, payload included, stays as it was).
REOPENED_FIELDS = [
    "generation",
    "status",
    "max_attempts",
    "next_attempt_at",
    "deadline_at",
    "reason_code",
    "finished_at",
    "cancel_requested",
    "delivery_status",
    "delivered_at",
    *LEASE_FIELDS,
]


def intent_reopen(*, intent: Intent, now: dt.datetime | None = None) -> Intent:
    """Re-open a dead-lettered intent for a replay: new generation, budget and deadline.

    Attempt numbers keep counting across generations, so the budget is the attempts made
    so far plus a fresh policy's worth. Payloads are never edited.
    """
    now = now or clock.now()
    with transaction.atomic():
        intent = Intent.objects.select_for_update().get(pk=intent.pk)
        if intent.dead_letter_reason is None:
            raise AlreadyTerminal(
                f"Intent {intent.public_id} is {intent.status}; only failed, exhausted or "
                "expired intents can be replayed (and accepted ones a receipt called "
                "undelivered)."
            )
        contract = intent.contract
        intent.generation += 1
        intent.status = IntentStatus.PENDING
        intent.max_attempts = intent.attempts_count + contract["retry"]["max_attempts"]
        intent.next_attempt_at = now
        intent.deadline_at = now + dt.timedelta(seconds=contract["acceptance_deadline_s"])
        intent.reason_code = ""
        intent.finished_at = None
        # A new generation's message: no receipt has spoken of it yet.
        intent.delivery_status = None
        intent.delivered_at = None
        intent.cancel_requested = False
        release_lease(intent, now=now)
        intent.save(update_fields=REOPENED_FIELDS)
        intents_changed.send(sender=Intent, changes=[(intent, "reopened")], now=now)
    # It is open again without being created: this process's quota estimate cannot see it.
    open_intent_count_forget(tenant_id=intent.tenant_id)
    return intent


__all__ = [
    "IntentNotFound",
    "SubmitResult",
    "intent_cancel",
    "intent_reopen",
    "intent_submit",
]
