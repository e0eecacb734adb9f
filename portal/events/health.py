"""How each endpoint fares, from the attempts the engine recorded for its deliveries.

In the recording's transaction: a 2xx clears the endpoint's failure streak; a 410
disables it at once; a streak of failures (every attempt since ``failing_since``)
lasting ``WEBHOOK_DISABLE_AFTER_S`` disables it too.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict

from django.conf import settings

from gateways.providers.webhook import GONE
from intents.models import Attempt, AttemptOutcome

from .models import DisabledReason, EndpointStatus, WebhookEndpoint
from .outbox import CONNECTION_PREFIX
from .services import webhook_endpoint_auto_disable

HEALTH_FIELDS = ["failing_since", "last_success_at", "updated_at"]


def endpoints_record_attempts(*, attempts: list[Attempt], now: dt.datetime) -> None:
    by_endpoint = _attempts_by_endpoint(attempts)
    if not by_endpoint:
        return
    window = dt.timedelta(seconds=settings.WEBHOOK_DISABLE_AFTER_S)
    # Locked in id order, so two workers recording for one endpoint never deadlock.
    endpoints = (
        WebhookEndpoint.objects.select_for_update()
        .filter(public_id__in=list(by_endpoint), status=EndpointStatus.ENABLED)
        .select_related("tenant")
        .order_by("id")
    )
    for endpoint in endpoints:
        before = (endpoint.failing_since, endpoint.last_success_at)
        gone = _apply_attempts(endpoint, by_endpoint[endpoint.public_id])
        if gone:
            webhook_endpoint_auto_disable(
                endpoint=endpoint,
                reason=DisabledReason.GONE,
                now=now,
                detail="the endpoint answered 410 Gone",
            )
        elif endpoint.failing_since is not None and now - endpoint.failing_since >= window:
            webhook_endpoint_auto_disable(
                endpoint=endpoint,
                reason=DisabledReason.FAILING,
                now=now,
                detail=f"every attempt failed since {endpoint.failing_since.isoformat()}",
            )
        if (endpoint.failing_since, endpoint.last_success_at) != before:
            endpoint.updated_at = now
            endpoint.save(update_fields=HEALTH_FIELDS)


def _attempts_by_endpoint(attempts: list[Attempt]) -> dict[uuid.UUID, list[Attempt]]:
    """The attempts made through webhook endpoints' connections, by endpoint id."""
    by_endpoint: dict[uuid.UUID, list[Attempt]] = defaultdict(list)
    for attempt in attempts:
        if attempt.connection.startswith(CONNECTION_PREFIX):
            try:
                endpoint_id = uuid.UUID(attempt.connection.removeprefix(CONNECTION_PREFIX))
            except ValueError:
                continue
            by_endpoint[endpoint_id].append(attempt)
    return by_endpoint


def _apply_attempts(endpoint: WebhookEndpoint, attempts: list[Attempt]) -> bool:
    """Move the endpoint's streak and last success on by ``attempts``, in the order they
    finished; whether one of the failures answered 410 Gone."""
    gone = False
    for attempt in sorted(attempts, key=lambda a: a.finished_at):
        if attempt.outcome == AttemptOutcome.ACCEPTED:
            endpoint.failing_since = None
            endpoint.last_success_at = attempt.finished_at
        else:
            endpoint.failing_since = endpoint.failing_since or attempt.started_at
            gone = gone or attempt.gateway_status == GONE
    return gone
