"""The suppression list: recipients a provider said can never be reached on a channel.

A provider's permanent recipient code (invalid number, STOP, unregistered token, hard
bounce) arrives as ``suppress_recipient`` on a result; the engine adds the recipient to
the tenant's list for that channel in the transaction that records the attempt. Intake
then refuses a new intent to it (422 ``recipient_suppressed``). Only a keyed hash
(HMAC-SHA256 with ``SUPPRESSION_HASH_KEY``, else ``SECRET_KEY``) and a masked form are
stored. Every change is audited.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import uuid
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from portal import clock
from portal.accounts.models import Tenant
from portal.audit.services import Actor, audit_record
from portal.errors import DomainError, InvalidRequest, NotFound
from portal.sql_limits import column_width

from .models import Suppression

SUPPRESSIBLE_CHANNELS = ("sms", "email", "push")
_RECIPIENT_FIELD = {"sms": "to", "email": "to", "push": "token"}
MASK = "•••"


class RecipientSuppressed(DomainError):
    code = "recipient_suppressed"
    title = "Recipient is on the suppression list"


class SuppressionNotFound(NotFound):
    pass


def recipients_of(channel: str, payload: Any) -> list[str]:
    """The recipients a payload addresses on ``channel`` (email: every ``to`` address)."""
    field = _RECIPIENT_FIELD.get(channel)
    if field is None or not isinstance(payload, dict):
        return []
    value = payload.get(field)
    values = value if isinstance(value, list) else [value]
    return [normalise(channel, v) for v in values if isinstance(v, str) and v.strip()]


def normalise(channel: str, recipient: str) -> str:
    text = "".join(recipient.split()) if channel == "sms" else recipient.strip()
    return text.lower() if channel == "email" else text


def recipient_hash(channel: str, recipient: str) -> str:
    key = str(settings.SUPPRESSION_HASH_KEY or settings.SECRET_KEY).encode()
    message = f"{channel}:{normalise(channel, recipient)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def mask(channel: str, recipient: str) -> str:
    """``+1555•••0001``, ``a•••@example.com``, ``dEv1•••f00d``."""
    recipient = normalise(channel, recipient)
    if channel == "email" and "@" in recipient:
        local, _, domain = recipient.rpartition("@")
        return f"{local[:1]}{MASK}@{domain}"[:64]
    if len(recipient) <= 8:
        return f"{recipient[:2]}{MASK}{recipient[-2:]}"
    return f"{recipient[:5]}{MASK}{recipient[-4:]}"


def _check_channel(channel: str) -> None:
    if channel not in SUPPRESSIBLE_CHANNELS:
        raise InvalidRequest(f"channel must be one of {', '.join(SUPPRESSIBLE_CHANNELS)}.")


def recipient_suppressed_check(*, tenant: Tenant, channel: str, payload: Any) -> None:
    """Raise ``RecipientSuppressed`` when the payload addresses a suppressed recipient.

    No query for a tenant that has no suppression on this channel (the flag comes with
    the tenant the API key already loaded).
    """
    if channel not in (tenant.suppressed_channels or []):
        return
    hashes = [recipient_hash(channel, r) for r in recipients_of(channel, payload)]
    if not hashes:
        return
    found = (
        Suppression.objects.filter(tenant=tenant, channel=channel, recipient_hash__in=hashes)
        .values_list("recipient_masked", flat=True)
        .first()
    )
    if found is not None:
        raise RecipientSuppressed(
            f"{found} is on this tenant's {channel} suppression list: a provider reported it "
            "permanently unreachable. Lift it (DELETE /api/v1/suppressions/…) to send again."
        )


def suppression_add(
    *,
    tenant_id: int,
    channel: str,
    recipient: str,
    connection: str = "",
    provider_code: str = "",
    reason: str = "",
    intent_public_id: uuid.UUID | None = None,
    now: dt.datetime | None = None,
) -> bool:
    """Put a recipient on the list, in the caller's transaction; False if already there."""
    now = now or clock.now()
    digest = recipient_hash(channel, recipient)
    with transaction.atomic():
        if Suppression.objects.filter(
            tenant_id=tenant_id, channel=channel, recipient_hash=digest
        ).exists():
            return False
        try:
            with transaction.atomic():
                row = Suppression.objects.create(
                    tenant_id=tenant_id,
                    channel=channel,
                    recipient_hash=digest,
                    recipient_masked=mask(channel, recipient),
                    connection=connection,
                    provider_code=provider_code[: column_width(Suppression, "provider_code")],
                    reason=reason[: column_width(Suppression, "reason")],
                    intent_public_id=intent_public_id,
                    created_at=now,
                )
        except IntegrityError:
            return False  # a concurrent batch added it first
        tenant = Tenant.objects.select_for_update().get(pk=tenant_id)
        if channel not in (tenant.suppressed_channels or []):
            tenant.suppressed_channels = sorted({*(tenant.suppressed_channels or []), channel})
            tenant.save(update_fields=["suppressed_channels"])
        audit_record(
            actor=Actor.system("engine"),
            action="suppression.added",
            object_type="suppression",
            object_id=row.pk,
            data={
                "tenant": tenant.name,
                "channel": channel,
                "recipient": row.recipient_masked,
                "connection": connection,
                "provider_code": provider_code,
                "intent": str(intent_public_id) if intent_public_id else None,
            },
        )
    return True


def suppression_lift(
    *, suppression: Suppression, actor: Actor, ip_address: str | None = None
) -> None:
    """Remove one entry from the list; audited."""
    with transaction.atomic():
        locked = Suppression.objects.select_for_update().filter(pk=suppression.pk).first()
        if locked is None:
            raise SuppressionNotFound("This suppression was already lifted.")
        tenant = Tenant.objects.select_for_update().get(pk=locked.tenant_id)
        locked.delete()
        if not Suppression.objects.filter(tenant=tenant, channel=locked.channel).exists():
            tenant.suppressed_channels = [
                c for c in (tenant.suppressed_channels or []) if c != locked.channel
            ]
            tenant.save(update_fields=["suppressed_channels"])
        audit_record(
            actor=actor,
            action="suppression.lifted",
            object_type="suppression",
            object_id=suppression.pk,
            data={
                "tenant": tenant.name,
                "channel": locked.channel,
                "recipient": locked.recipient_masked,
            },
            ip_address=ip_address,
        )


def suppression_get(*, tenant: Tenant, channel: str, recipient: str) -> Suppression:
    if channel not in SUPPRESSIBLE_CHANNELS:
        raise SuppressionNotFound(f"No suppression list for channel {channel!r}.")
    row = Suppression.objects.filter(
        tenant=tenant, channel=channel, recipient_hash=recipient_hash(channel, recipient)
    ).first()
    if row is None:
        raise SuppressionNotFound(f"{mask(channel, recipient)} is not suppressed on {channel}.")
    return row


def suppressions_for_tenant(
    *, tenant: Tenant, channel: str | None = None, recipient: str | None = None
) -> QuerySet[Suppression]:
    rows = Suppression.objects.filter(tenant=tenant)
    if channel is not None:
        _check_channel(channel)
        rows = rows.filter(channel=channel)
    if recipient:
        if not channel:
            raise InvalidRequest("recipient needs channel: a recipient is hashed per channel.")
        rows = rows.filter(recipient_hash=recipient_hash(channel, recipient))
    return rows.order_by("-created_at", "-id")
