"""Operations on a tenant's webhook endpoints; one transaction each, audited.

A signing secret (``whsec_`` + base64 of 32 random bytes, as the Standard Webhooks
specification shapes them) is returned once, by the operation that made it, and kept
only sealed. Rotating keeps the old one signing beside the new for
``ROTATION_OVERLAP`` (``webhook-signature: v1,<new> v1,<old>``), so a receiver can
switch without missing an event.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import secrets
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction

from gateways.secrets import seal
from intents.internal import internal_deliveries_cancel
from portal import clock
from portal.accounts.models import Tenant
from portal.audit.services import Actor, audit_record
from portal.errors import InvalidRequest

from .models import EVENT_TYPES, DisabledReason, EndpointStatus, WebhookEndpoint, WebhookEvent
from .outbox import event_write

logger = logging.getLogger("portal.events")

ROTATION_OVERLAP = dt.timedelta(hours=24)
URL_MAX_LENGTH = 2000
DESCRIPTION_MAX_LENGTH = 500
EDITABLE_FIELDS = ("url", "event_types", "description", "status")
# What enabling or disabling writes, besides the edited fields.
STATUS_FIELDS = ["status", "disabled_at", "disabled_reason", "failing_since", "updated_at"]


def new_signing_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _invalid(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(
        message, field=field, errors=[{"pointer": f"/{field}", "message": message}]
    )


def validate_url(url: Any) -> str:
    """An absolute http(s) URL with a host, https unless DEBUG is on, no credentials."""
    if not isinstance(url, str) or not url or len(url) > URL_MAX_LENGTH:
        raise _invalid("url", f"url must be a URL of 1 to {URL_MAX_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port out of range)
    except ValueError:
        raise _invalid("url", "url is not a valid URL.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _invalid("url", "url must be an absolute http(s) URL with a host.")
    if parts.scheme != "https" and not settings.DEBUG:
        raise _invalid("url", "url must be https.")
    if parts.username or parts.password:
        raise _invalid("url", "url may not hold a user name or password.")
    if not url.isascii() or not url.isprintable() or " " in url:
        raise _invalid("url", "url may hold only printable ASCII characters, no spaces.")
    return url


def validate_event_types(event_types: Any) -> list[str]:
    if not isinstance(event_types, list) or not all(isinstance(t, str) for t in event_types):
        raise _invalid("event_types", "event_types must be a list of event type names.")
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise _invalid(
            "event_types",
            f"Unknown event type(s): {', '.join(unknown)}. Known: {', '.join(EVENT_TYPES)}.",
        )
    return [t for t in EVENT_TYPES if t in event_types]


def validate_description(description: Any) -> str:
    if not isinstance(description, str) or len(description) > DESCRIPTION_MAX_LENGTH:
        raise _invalid(
            "description", f"description must be a string of at most {DESCRIPTION_MAX_LENGTH}."
        )
    if "\x00" in description:
        raise _invalid("description", "description may not contain the character U+0000.")
    return description


def _audit(endpoint: WebhookEndpoint, action: str, actor: Actor, **data: Any) -> None:
    audit_record(
        actor=actor,
        action=f"webhook_endpoint.{action}",
        object_type="webhook_endpoint",
        object_id=str(endpoint.public_id),
        data={
            "tenant": endpoint.tenant.name,
            "url": endpoint.url,
            **{k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in data.items()},
        },
    )


def webhook_endpoint_create(
    *,
    tenant: Tenant,
    url: Any,
    event_types: Any = None,
    description: Any = "",
    actor: Actor,
) -> tuple[WebhookEndpoint, str]:
    """A new enabled endpoint and its signing secret (returned only here)."""
    secret = new_signing_secret()
    now = clock.now()
    endpoint = WebhookEndpoint(
        tenant=tenant,
        url=validate_url(url),
        event_types=validate_event_types([] if event_types is None else event_types),
        description=validate_description(description),
        secret_sealed=seal(secret),
        created_at=now,
        updated_at=now,
    )
    with transaction.atomic():
        endpoint.save(force_insert=True)
        _audit(endpoint, "created", actor, event_types=endpoint.event_types)
    return endpoint, secret


def webhook_endpoint_update(
    *, endpoint: WebhookEndpoint, changes: dict[str, Any], actor: Actor
) -> WebhookEndpoint:
    """PATCH: any of url, event_types, description, status."""
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise _invalid(unknown[0], f"Unknown or read-only field(s): {', '.join(unknown)}.")
    if "url" in changes:
        endpoint.url = validate_url(changes["url"])
    if "event_types" in changes:
        endpoint.event_types = validate_event_types(changes["event_types"])
    if "description" in changes:
        endpoint.description = validate_description(changes["description"])
    status = changes.get("status", endpoint.status)
    if status not in EndpointStatus.values:
        raise _invalid("status", "status must be enabled or disabled.")
    now = clock.now()
    with transaction.atomic():
        if status != endpoint.status:
            if status == EndpointStatus.ENABLED:
                _enable(endpoint)
            else:
                _disable(endpoint, reason=DisabledReason.CLIENT, now=now)
        endpoint.updated_at = now
        endpoint.save(
            update_fields=[
                *(f for f in EDITABLE_FIELDS if f in changes and f != "status"),
                *STATUS_FIELDS,
            ]
        )
        _audit(endpoint, "updated", actor, fields=sorted(changes), status=endpoint.status)
    return endpoint


def _enable(endpoint: WebhookEndpoint) -> None:
    endpoint.status = EndpointStatus.ENABLED
    endpoint.disabled_at = None
    endpoint.disabled_reason = ""
    endpoint.failing_since = None  # a fresh window: the client says it is fixed


def _disable(endpoint: WebhookEndpoint, *, reason: str, now: dt.datetime) -> None:
    endpoint.status = EndpointStatus.DISABLED
    endpoint.disabled_at = now
    endpoint.disabled_reason = reason


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor: Actor) -> None:
    """The endpoint and its events go; its deliveries not yet made are cancelled."""
    with transaction.atomic():
        cancelled = internal_deliveries_cancel(
            public_ids=WebhookEvent.objects.filter(endpoint=endpoint).values("intent_id"),
            now=clock.now(),
        )
        _audit(endpoint, "deleted", actor, deliveries_cancelled=cancelled)
        endpoint.delete()


def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint, actor: Actor) -> str:
    """A new secret; the current one keeps signing beside it for ``ROTATION_OVERLAP``."""
    secret = new_signing_secret()
    now = clock.now()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        endpoint.previous_secret_sealed = endpoint.secret_sealed
        endpoint.previous_secret_until = now + ROTATION_OVERLAP
        endpoint.secret_sealed = seal(secret)
        endpoint.updated_at = now
        endpoint.save(
            update_fields=[
                "previous_secret_sealed",
                "previous_secret_until",
                "secret_sealed",
                "updated_at",
            ]
        )
        _audit(endpoint, "secret_rotated", actor, previous_until=now + ROTATION_OVERLAP)
    return secret


def webhook_endpoint_send_test(*, endpoint: WebhookEndpoint, actor: Actor) -> WebhookEvent:
    """A ``webhook.test`` event to this endpoint (enabled or not: the client asked)."""
    now = clock.now()
    data = {
        "endpoint_id": str(endpoint.public_id),
        "message": "A test event, sent because you asked for one.",
    }
    with transaction.atomic():
        event = event_write(endpoint=endpoint, event_type="webhook.test", data=data, now=now)
        _audit(endpoint, "test_sent", actor, event_id=str(event.public_id))
    return event


def webhook_endpoint_enable(*, endpoint: WebhookEndpoint, actor: Actor) -> WebhookEndpoint:
    """An operator re-enables a disabled endpoint (after the client fixed it)."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if endpoint.status == EndpointStatus.ENABLED:
            return endpoint
        previous_reason = endpoint.disabled_reason
        _enable(endpoint)
        endpoint.updated_at = clock.now()
        endpoint.save(update_fields=STATUS_FIELDS)
        _audit(endpoint, "enabled", actor, previous_reason=previous_reason)
    return endpoint


def webhook_endpoint_auto_disable(
    *, endpoint: WebhookEndpoint, reason: str, now: dt.datetime, detail: str
) -> None:
    """The engine disables an endpoint (410, or failing for the whole window), in the
    recording's transaction: recorded, audited and logged as an operational event."""
    _disable(endpoint, reason=reason, now=now)
    endpoint.updated_at = now
    endpoint.save(update_fields=["status", "disabled_at", "disabled_reason", "updated_at"])
    _audit(endpoint, "disabled", Actor.system("webhook delivery"), reason=reason, detail=detail)
    logger.warning(
        "webhook_endpoint.disabled",
        extra={
            "event": "webhook_endpoint.disabled",
            "endpoint_id": str(endpoint.public_id),
            "tenant_id": endpoint.tenant_id,
            "reason": reason,
            "detail": detail,
        },
    )
