"""Read queries of client webhooks: a tenant's endpoints, an endpoint's deliveries."""

from __future__ import annotations

import uuid

from django.db.models import Count, OuterRef, QuerySet, Subquery

from intents.models import Attempt
from portal.accounts.models import Tenant
from portal.errors import NotFound

from .models import DisabledReason, EndpointStatus, WebhookEndpoint, WebhookEvent


def parse_endpoint_id(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def endpoints_for_tenant(*, tenant: Tenant) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(tenant=tenant)


def endpoint_get_for_tenant(*, tenant: Tenant, public_id: object) -> WebhookEndpoint:
    """The tenant's endpoint; a foreign, unknown or malformed id is simply not found."""
    parsed = parse_endpoint_id(public_id)
    endpoint = (
        None
        if parsed is None
        else WebhookEndpoint.objects.filter(tenant=tenant, public_id=parsed)
        .select_related("tenant")
        .first()
    )
    if endpoint is None:
        raise NotFound(f"No webhook endpoint {public_id} for this tenant.")
    return endpoint


def _with_delivery_state(events: QuerySet[WebhookEvent]) -> QuerySet[WebhookEvent]:
    """Each event with its delivery (the internal intent) and the latest attempt's HTTP
    status: one query per page."""
    latest_status = (
        Attempt.objects.filter(intent__public_id=OuterRef("intent_id"))
        .order_by("-number")
        .values("gateway_status")[:1]
    )
    return events.select_related("intent").annotate(last_status_code=Subquery(latest_status))


def deliveries_for_endpoint(*, endpoint: WebhookEndpoint) -> QuerySet[WebhookEvent]:
    return _with_delivery_state(WebhookEvent.objects.filter(endpoint=endpoint))


def recent_deliveries(*, endpoint_ids: list[int] | None = None) -> QuerySet[WebhookEvent]:
    """For the operators' screens: the latest events, of some endpoints or of all."""
    events = WebhookEvent.objects.select_related("endpoint", "endpoint__tenant")
    if endpoint_ids is not None:
        events = events.filter(endpoint_id__in=endpoint_ids)
    return _with_delivery_state(events).order_by("-created_at", "-id")


def endpoints_disabled_by_delivery() -> QuerySet[WebhookEndpoint]:
    """Endpoints the engine disabled (a 410, or failing for ``WEBHOOK_DISABLE_AFTER_S``)
    and still disabled: what the ``webhook_endpoint.disabled`` escalation watches. An
    endpoint its tenant or an operator switched off is a decision, not an incident."""
    return (
        WebhookEndpoint.objects.filter(
            status=EndpointStatus.DISABLED,
            disabled_reason__in=[DisabledReason.GONE, DisabledReason.FAILING],
        )
        .select_related("tenant")
        .order_by("disabled_at", "id")
    )


def disabled_endpoint_counts() -> dict[str, int]:
    """Endpoints disabled now, by reason (every reason listed, 0 when none): the
    ``portal_webhook_endpoints_disabled`` gauge."""
    counts = dict.fromkeys(DisabledReason.values, 0)
    rows = (
        WebhookEndpoint.objects.filter(status=EndpointStatus.DISABLED)
        .values("disabled_reason")
        .annotate(count=Count("id"))
        .order_by()
    )
    for row in rows:
        counts[row["disabled_reason"] or DisabledReason.CLIENT] += row["count"]
    return counts
