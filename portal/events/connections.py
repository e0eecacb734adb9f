"""Each enabled endpoint is a connection the engine can send through.

Registered with ``gateways.connections`` under ``webhook-endpoint:`` (``apps.py``): the
engine asks for the connections of a batch's deliveries at once, and gets one query.
The secret reference is the sealed secret itself, plus the previous one while a
rotation overlaps, so the provider signs with both and no database read happens while
sending. A disabled endpoint serves no connection: its deliveries still due are charged
an attempt each without a request (``executor_error``), so they go out if it is enabled
again within their retry window, and end as dead letters (replayable) otherwise.
Deleting an endpoint cancels them instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from gateways.connections import ConnectionSpec
from gateways.secrets import sealed_reference
from portal import clock

from .models import EndpointStatus, WebhookEndpoint
from .outbox import CONNECTION_PREFIX, connection_key


def _endpoint_id(key: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(key.removeprefix(CONNECTION_PREFIX))
    except ValueError:
        return None


def endpoint_connection_specs(keys: set[str]) -> Mapping[str, ConnectionSpec]:
    ids = {parsed for parsed in map(_endpoint_id, keys) if parsed is not None}
    now = clock.now()
    specs = {}
    endpoints = WebhookEndpoint.objects.filter(public_id__in=ids, status=EndpointStatus.ENABLED)
    for endpoint in endpoints.only(
        "public_id", "url", "secret_sealed", "previous_secret_sealed", "previous_secret_until"
    ):
        tokens = [endpoint.secret_sealed]
        if endpoint.previous_secret_until is not None and endpoint.previous_secret_until > now:
            tokens.append(endpoint.previous_secret_sealed)
        key = connection_key(endpoint)
        specs[key] = ConnectionSpec(
            spec={
                "key": key,
                "provider": "webhook_endpoint",
                "channel": "http",
                "description": "a client's webhook endpoint",
                "rate_per_second": None,
                "circuit": None,  # failing endpoints are judged by WEBHOOK_DISABLE_AFTER_S
                "settings": {"url": endpoint.url},
                "secrets": {"signing_secret": sealed_reference(tokens)},
            }
        )
    return specs
