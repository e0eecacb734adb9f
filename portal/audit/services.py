"""Writing the audit history: one chained, append-only event per operator or security action.

Callers call ``audit_record`` inside the transaction of the change it records, so the
event and the change commit or roll back together.
"""

from __future__ import annotations

import contextvars
import dataclasses
import hashlib
import hmac
import ipaddress
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from portal.observability.context import current_request_id
from portal.redaction import redact as redact_value

from .models import ActorType, AuditChainHead, AuditEvent

# Blanked in audit data on top of what the logs blank: any ``…key`` and the 2FA backup
# code hashes (an audit event is kept for years, so it hides more).
_AUDIT_ONLY_SECRET_KEYS = re.compile(r"code_hash|key$", re.IGNORECASE)


@dataclasses.dataclass(frozen=True, slots=True)
class Actor:
    type: str
    id: str = ""
    label: str = ""

    @classmethod
    def user(cls, user: Any) -> Actor:
        return cls(ActorType.USER, str(user.pk), user.get_username())

    @classmethod
    def api_key(cls, api_key: Any) -> Actor:
        return cls(ActorType.API_KEY, api_key.prefix, api_key.name)

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(ActorType.SYSTEM, "", label)


@dataclasses.dataclass(frozen=True, slots=True)
class AuditContext:
    """Who is acting, for events recorded by signal handlers that cannot see the request."""

    actor: Actor
    ip_address: str | None = None


_audit_context: contextvars.ContextVar[AuditContext | None] = contextvars.ContextVar(
    "audit_context", default=None
)


@contextmanager
def audit_context(*, actor: Actor, ip_address: str | None = None) -> Iterator[AuditContext]:
    """Name the actor of the changes made inside the block (e.g. m2m signals in the admin)."""
    context = AuditContext(actor=actor, ip_address=ip_address)
    token = _audit_context.set(context)
    try:
        yield context
    finally:
        _audit_context.reset(token)


def current_audit_context() -> AuditContext | None:
    return _audit_context.get()


def ip_from_request(request: Any) -> str | None:
    """The client's address: ``REMOTE_ADDR``, or behind ``TRUSTED_PROXY_COUNT`` reverse
    proxies the address the outermost of them received the request from.

    Each proxy appends the address it received from to ``X-Forwarded-For``, so with N
    trusted proxies the client is the N-th entry from the right; anything left of it
    came from the client and is ignored. With the default of 0 the header is never read,
    so a forged one changes nothing. django-axes keys its lockouts on this address
    (``AXES_CLIENT_IP_CALLABLE``) and every audit event records it.
    """
    meta = getattr(request, "META", None) or {}
    remote = normalize_ip(meta.get("REMOTE_ADDR"))
    hops = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if hops <= 0:
        return remote
    forwarded = [part.strip() for part in str(meta.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < hops:  # not through every trusted proxy: only the peer is known
        return remote
    return normalize_ip(forwarded[-hops]) or remote


def normalize_ip(value: str | None) -> str | None:
    """The form the database stores (so the hash computed before saving still matches)."""
    if not value:
        return None
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return None
    return clean_ipv6_address(value) if ":" in value else value


def redact(data: Any) -> Any:
    """Blank the values of secret-looking keys, at any depth: every key the logs blank
    (``portal.redaction``) and the audit-only ones."""
    return redact_value(data, extra_pattern=_AUDIT_ONLY_SECRET_KEYS)


# The fields the chain's hash covers, in export order: every field but the hash. The
# export writes these plus ``hash``, so a verifier can recompute it from an export line.
HASHED_FIELDS = (
    "sequence",
    "occurred_at",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "object_type",
    "object_id",
    "data",
    "ip_address",
    "request_id",
    "prev_hash",
)


def hashed_body(event: AuditEvent) -> dict[str, Any]:
    """``HASHED_FIELDS`` of ``event`` as JSON-ready values (times to the microsecond)."""
    body: dict[str, Any] = {name: getattr(event, name) for name in HASHED_FIELDS}
    body["occurred_at"] = event.occurred_at.isoformat(timespec="microseconds")
    return body


def canonical_event(event: AuditEvent) -> bytes:
    """The bytes the hash covers: every field but the hash, in canonical JSON."""
    body = hashed_body(event)
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compute_hash(event: AuditEvent) -> str:
    key = (settings.AUDIT_HMAC_KEY or "").encode()
    return hmac.new(key, canonical_event(event), hashlib.sha256).hexdigest()


def head_signature(*, sequence: int, last_hash: str) -> str:
    """The chain head's HMAC: binds the newest event's sequence and hash to the key."""
    key = (settings.AUDIT_HMAC_KEY or "").encode()
    message = f"audit-chain-head:{sequence}:{last_hash}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def audit_record(
    *,
    actor: Actor,
    action: str,
    object_type: str = "",
    object_id: str | int = "",
    data: dict[str, Any] | None = None,
    ip_address: str | None = None,
) -> AuditEvent:
    """Append one event to the chain, in the caller's transaction (or its own)."""
    with transaction.atomic():
        # get_or_create: a flushed test database (transactional tests) has no head row;
        # with events present a recreated head would collide on ``sequence`` and fail.
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(pk=1)
        event = AuditEvent(
            sequence=head.sequence + 1,
            occurred_at=timezone.now(),
            actor_type=actor.type,
            actor_id=actor.id,
            actor_label=actor.label,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            data=redact(data or {}),
            ip_address=normalize_ip(ip_address),
            request_id=current_request_id(),
            prev_hash=head.last_hash,
        )
        event.hash = compute_hash(event)
        event.save(force_insert=True)
        head.sequence = event.sequence
        head.last_hash = event.hash
        head.signature = head_signature(sequence=event.sequence, last_hash=event.hash)
        head.save(update_fields=["sequence", "last_hash", "signature"])
    return event


def audit_export_begin(
    *,
    actor: Actor,
    fmt: str,
    since: Any = None,
    filters: dict[str, Any] | None = None,
    ip_address: str | None = None,
) -> AuditEvent:
    """Record that someone exports the history; the export covers events before this one.

    The returned event's ``sequence - 1`` is the last event the export may contain, so
    the file is a consistent snapshot even while new events keep arriving.
    """
    data: dict[str, Any] = {"format": fmt, "filters": filters or {}}
    if since is not None:
        data["since"] = since.isoformat()
    return audit_record(actor=actor, action="audit.exported", data=data, ip_address=ip_address)
