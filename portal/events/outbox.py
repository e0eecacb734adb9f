"""The events outbox: every intent change a client may hear of writes its events in the
transaction of the change, one per subscribed enabled endpoint, each with its delivery.

A delivery is an internal intent (``intents.internal``) going out through the
endpoint's own connection (``webhook-endpoint:<endpoint id>``, served by
``portal.events.connections``), so the engine retries it, dead-letters it and replays
it like any other. Its public id is the event id: ``webhook-id`` on every retry.

The engine records a batch at a time, and so does this: for a batch of changes, one
query for the tenants' enabled endpoints and, when any subscribes, one for the intents
as the API shows them, then two bulk inserts.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from rest_framework import serializers

from intents.internal import InternalDelivery, internal_deliveries_create
from intents.models import Intent
from intents.serializers import intent_representation

from .models import EndpointStatus, WebhookEndpoint, WebhookEvent

CONNECTION_PREFIX = "webhook-endpoint:"
DELIVERY_PURPOSE = "webhook-event"
# How an event is retried: 5 s, 30 s, 3 min, 18 min, 1.8 h, then every 10 h, for up to
# three days (close to the Standard Webhooks / Svix schedule).
DELIVERY_CONTRACT: dict[str, Any] = {
    "gateway": "http",
    "delivery": "at_least_once",
    "attempt_timeout_s": 15.0,
    "acceptance_deadline_s": 3 * 24 * 3600.0,
    "retry": {
        "strategy": "exponential",
        "initial_delay_s": 5.0,
        "multiplier": 6.0,
        "max_delay_s": 36000.0,
        "max_attempts": 12,
    },
}


# Rendered as the API renders times ("…Z").
_TIMESTAMP = serializers.DateTimeField()


def connection_key(endpoint: WebhookEndpoint) -> str:
    return f"{CONNECTION_PREFIX}{endpoint.public_id}"


def event_body(event_type: str, data: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    return {"type": event_type, "timestamp": _TIMESTAMP.to_representation(now), "data": data}


def _store(
    pending: list[tuple[WebhookEndpoint, str, dict[str, Any]]], now: dt.datetime
) -> list[WebhookEvent]:
    """The events and their deliveries, in two bulk inserts."""
    events, deliveries = [], []
    for endpoint, event_type, data in pending:
        event_id = uuid.uuid4()
        deliveries.append(
            InternalDelivery(
                tenant_id=endpoint.tenant_id,
                public_id=event_id,
                payload=event_body(event_type, data, now),
                connection=connection_key(endpoint),
            )
        )
        events.append(
            WebhookEvent(
                public_id=event_id,
                endpoint=endpoint,
                type=event_type,
                intent_id=event_id,
                created_at=now,
            )
        )
    internal_deliveries_create(
        purpose=DELIVERY_PURPOSE, contract=DELIVERY_CONTRACT, deliveries=deliveries, now=now
    )
    WebhookEvent.objects.bulk_create(events, batch_size=200)
    return events


def event_write(
    *, endpoint: WebhookEndpoint, event_type: str, data: dict[str, Any], now: dt.datetime
) -> WebhookEvent:
    """One event for one endpoint, in the caller's transaction."""
    return _store([(endpoint, event_type, data)], now)[0]


def events_write_for_changes(*, changes: Iterable[tuple[Intent, str]], now: dt.datetime) -> int:
    """The events of a batch of intent changes; returns how many were written.

    An internal delivery's own changes raise nothing (an event about an event's
    delivery would never end).
    """
    client_changes = [(intent, kind) for intent, kind in changes if not intent.internal]
    if not client_changes:
        return 0
    tenant_ids = {intent.tenant_id for intent, _ in client_changes}
    endpoints_of: dict[int, list[WebhookEndpoint]] = defaultdict(list)
    for endpoint in WebhookEndpoint.objects.filter(
        tenant_id__in=tenant_ids, status=EndpointStatus.ENABLED
    ).only("id", "public_id", "tenant_id", "event_types"):
        endpoints_of[endpoint.tenant_id].append(endpoint)
    wanted = [
        (intent.pk, endpoint, f"intent.{kind}")
        for intent, kind in client_changes
        for endpoint in endpoints_of.get(intent.tenant_id, ())
        if endpoint.subscribes_to(f"intent.{kind}")
    ]
    if not wanted:
        return 0
    # As the API shows them now: read once, after this transaction's writes.
    shown = {
        intent.pk: intent_representation(intent)
        for intent in Intent.objects.filter(pk__in={pk for pk, _, _ in wanted}).defer(
            "payload", "contract"
        )
    }
    return len(_store([(endpoint, kind, shown[pk]) for pk, endpoint, kind in wanted], now))
