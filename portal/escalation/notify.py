"""One notification as its destination's provider expects it, sent through that provider.

PagerDuty and Slack take the ``ops`` channel's canonical payload (``gateways.providers.
ops``): the episode's ``dedup_key`` makes PagerDuty fold every resend into one alert and
close it with the resolve. A webhook receives a JSON event whose ``webhook-id`` is the
same on every resend of one notification; smtp an email to the rule's addresses.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from django.conf import settings

from gateways.base import GatewayMessage, GatewayResult
from gateways.connections import ConnectionSpec
from gateways.registry import GatewaySession

from .models import Episode, Notification, NotificationAction


def isoformat_z(value: dt.datetime) -> str:
    """RFC 3339 in UTC, as PagerDuty's ``payload.timestamp`` documents it."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _headline(episode: Episode, action: str) -> str:
    prefix = "RESOLVED" if action == NotificationAction.RESOLVE else episode.severity.upper()
    return f"[{prefix}] {episode.summary}"


def event_body(episode: Episode, action: str) -> dict[str, Any]:
    """The escalation as data: what a webhook receives (and an email's text lists)."""
    return {
        "type": f"escalation.{'resolved' if action == NotificationAction.RESOLVE else 'triggered'}",
        "dedup_key": episode.dedup_key,
        "rule": episode.rule.key,
        "kind": episode.kind,
        "subject": episode.subject,
        "severity": episode.severity,
        "summary": episode.summary,
        "details": episode.details,
        "source": settings.ESCALATION_SOURCE,
        "opened_at": isoformat_z(episode.opened_at),
        "resolved_at": isoformat_z(episode.resolved_at) if episode.resolved_at else None,
    }


def _ops_payload(episode: Episode, action: str) -> dict[str, Any]:
    return {
        "summary": episode.summary,
        "severity": episode.severity,
        "source": settings.ESCALATION_SOURCE,
        "event_action": action,
        "dedup_key": episode.dedup_key,
        "timestamp": isoformat_z(episode.opened_at),
        "component": episode.subject or "service",
        "group": episode.rule.key,
        "class": episode.kind,
        "details": {**episode.details, "rule": episode.rule.key, "subject": episode.subject},
    }


def _email_payload(episode: Episode, action: str, recipients: list[str]) -> dict[str, Any]:
    body = event_body(episode, action)
    lines = [_headline(episode, action), ""]
    lines += [f"{name}: {value}" for name, value in body.items() if name != "details"]
    lines += [f"details.{name}: {value}" for name, value in episode.details.items()]
    return {"to": recipients, "subject": _headline(episode, action), "text": "\n".join(lines)}


def build_message(
    spec: ConnectionSpec, episode: Episode, notification: Notification
) -> GatewayMessage:
    action = notification.action
    provider = spec.spec["provider"]
    if provider in ("pagerduty", "slack"):
        payload = _ops_payload(episode, action)
    elif provider == "smtp":
        payload = _email_payload(episode, action, list(notification.recipients))
    else:  # webhook
        payload = event_body(episode, action)
    # One key per (episode, action): a resend is recognisably the same notification.
    return GatewayMessage(
        idempotency_key=f"{episode.dedup_key}.{action}",
        correlation_id=episode.dedup_key,
        payload=payload,
    )


def send(spec: ConnectionSpec, message: GatewayMessage) -> GatewayResult:
    """Send through the connection's provider (no raise: every failure is a result)."""
    timeout_s = settings.ESCALATION_SEND_TIMEOUT_S

    async def _send() -> GatewayResult:
        async with GatewaySession() as session:
            return await session.connection(spec.config).send(message, timeout_s=timeout_s)

    return asyncio.run(_send())
