"""PagerDuty Events API v2: ``POST /v2/enqueue`` with the routing key held as a secret.

``dedup_key`` makes a resend safe: PagerDuty folds every trigger with one key into one
alert, and a ``resolve`` with the same key closes it (the escalation issue's "notify
once, resolve once").
"""

from __future__ import annotations

from typing import Any

from ..adapters.base_http import GatewayPayloadError
from ..base import GatewayMessage, GatewayResult, Outcome, ProbeResult
from .common import ProviderBase, require_fields, result
from .ops import DEFAULT_SOURCE, EVENT_ACTIONS, SEVERITIES

ROUTING_KEY_LENGTH = 32
DEDUP_KEY_MAX = 255  # the API's limit
PAYLOAD_FIELDS = ("component", "group", "class")


class PagerDutyProvider(ProviderBase):
    name = "pagerduty"
    default_base_url = "https://events.pagerduty.com"

    def event(self, message: GatewayMessage) -> dict[str, Any]:
        """The Events API v2 body for one canonical ops payload."""
        payload = message.payload
        action = str(payload.get("event_action") or "trigger")
        if action not in EVENT_ACTIONS:
            raise GatewayPayloadError(f"ops event_action {action!r} is not one of {EVENT_ACTIONS}")
        event: dict[str, Any] = {
            "routing_key": self.secret("routing_key"),
            "event_action": action,
            "dedup_key": str(payload.get("dedup_key") or message.idempotency_key)[:DEDUP_KEY_MAX],
        }
        if action == "trigger":  # acknowledge / resolve need only the dedup_key
            require_fields(payload, "ops", "summary")
            severity = str(payload.get("severity") or "error")
            if severity not in SEVERITIES:
                raise GatewayPayloadError(f"ops severity {severity!r} is not one of {SEVERITIES}")
            body: dict[str, Any] = {
                "summary": str(payload["summary"])[:1024],  # the API's limit
                "source": str(payload.get("source") or DEFAULT_SOURCE),
                "severity": severity,
            }
            body.update({f: payload[f] for f in PAYLOAD_FIELDS if payload.get(f)})
            if payload.get("timestamp"):
                body["timestamp"] = payload["timestamp"]
            if payload.get("details"):
                body["custom_details"] = payload["details"]
            event["payload"] = body
            if payload.get("links"):
                event["links"] = payload["links"]
        return event

    async def _send(self, message: GatewayMessage, *, timeout_s: float) -> GatewayResult:
        event = self.event(message)
        answer = await self.request(
            "POST",
            f"{self.base_url()}/v2/enqueue",
            json=event,
            headers={"Accept": "application/json"},
        )
        data = answer.json_object()
        if 200 <= answer.status < 300:
            return answer.status_result(message_id=str(data.get("dedup_key") or event["dedup_key"]))
        errors = data.get("errors")
        detail = str(data.get("message") or "")
        if isinstance(errors, list) and errors:
            detail = f"{detail}: {'; '.join(str(e) for e in errors)}"
        if answer.status == 400 and "routing_key" in detail:
            # A malformed routing key is our credential, not the event: re-read, fail over.
            return result(
                Outcome.REJECTED_TRANSIENT,
                status_code=400,
                error=f"HTTP 400: {detail}",
                auth_failed=True,
                provider_code=str(data.get("status") or ""),
            )
        return answer.status_result(
            provider_code=str(data.get("status") or ""), detail=detail or answer.text_snippet()
        )

    async def _probe(self, *, timeout_s: float) -> ProbeResult:
        """The Events API has no call that sends nothing: check the key resolves and has
        the documented shape, and that the endpoint is allowed."""
        self.base_url()
        key = self.secret("routing_key")
        if len(key) != ROUTING_KEY_LENGTH:
            return ProbeResult(False, f"routing key is {len(key)} characters, not 32")
        return ProbeResult(True, "routing key resolved (the Events API has no dry run)")
