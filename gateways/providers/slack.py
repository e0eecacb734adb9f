"""Slack incoming webhooks: ``{"text", "blocks"?}`` posted to the URL held as a secret.

The URL is the credential, so it comes from ``[secrets] webhook_url`` and is scrubbed
from every error. Slack answers ``200 ok`` or a status with a short error word in the
body (``invalid_payload``, ``channel_is_archived`` …), which decides the outcome. Slack
takes no idempotency key: a resend after a timeout can post twice.
"""

from __future__ import annotations

from ..allowlist import check_url_allowed
from ..base import GatewayMessage, GatewayResult, Outcome, ProbeResult
from .common import ProviderBase, require_fields, result
from .ops import ops_text

# Slack's documented error words -> outcome; auth_failed where the URL itself is refused
# (rotated or revoked: re-read the secret, fail over meanwhile).
SLACK_ERRORS: dict[str, tuple[Outcome, bool]] = {
    "invalid_payload": (Outcome.REJECTED_PERMANENT, False),
    "no_text": (Outcome.REJECTED_PERMANENT, False),
    "too_many_attachments": (Outcome.REJECTED_PERMANENT, False),
    "user_not_found": (Outcome.REJECTED_PERMANENT, False),
    "channel_not_found": (Outcome.REJECTED_PERMANENT, False),
    "channel_is_archived": (Outcome.REJECTED_PERMANENT, False),
    "action_prohibited": (Outcome.REJECTED_PERMANENT, False),
    "posting_to_general_channel_denied": (Outcome.REJECTED_PERMANENT, False),
    "invalid_token": (Outcome.REJECTED_TRANSIENT, True),
    "no_service": (Outcome.REJECTED_TRANSIENT, True),
    "no_service_id": (Outcome.REJECTED_TRANSIENT, True),
    "no_team": (Outcome.REJECTED_TRANSIENT, True),
    "team_disabled": (Outcome.REJECTED_TRANSIENT, True),
    "rollup_error": (Outcome.REJECTED_TRANSIENT, False),
}


class SlackProvider(ProviderBase):
    name = "slack"

    def _webhook_url(self) -> str:
        url = self.secret("webhook_url")
        check_url_allowed(url)
        return url

    async def _send(self, message: GatewayMessage, *, timeout_s: float) -> GatewayResult:
        payload = message.payload
        if not payload.get("text") and not payload.get("blocks"):
            require_fields(payload, "ops", "summary")
        body: dict[str, object] = {"text": payload.get("text") or ops_text(payload)}
        if payload.get("blocks"):
            body["blocks"] = payload["blocks"]
        answer = await self.request("POST", self._webhook_url(), json=body)
        if 200 <= answer.status < 300:
            return answer.status_result()
        word = answer.raw.decode("utf-8", errors="replace").strip()
        known = SLACK_ERRORS.get(word)
        if known is None:
            return answer.status_result(provider_code=word[:64] if word.isidentifier() else "")
        outcome, auth_failed = known
        return result(
            outcome,
            status_code=answer.status,
            retry_after_s=answer.retry_after(),
            error=f"HTTP {answer.status}: {word}",
            auth_failed=auth_failed,
            provider_code=word,
        )

    async def _probe(self, *, timeout_s: float) -> ProbeResult:
        """Slack offers no check that posts nothing: resolve the URL and check its host."""
        self._webhook_url()
        return ProbeResult(True, "webhook URL resolved and allowed (Slack has no dry run)")
