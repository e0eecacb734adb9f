"""Vonage SMS API: ``POST https://rest.nexmo.com/sms/json`` (form-encoded).

Vonage answers HTTP 200 for nearly every refusal: each message part carries its own
``status`` code in the JSON body, and that code decides the outcome and suppression.
``client-ref`` carries the idempotency key for receipts and reports, but Vonage does
not deduplicate on it: a resend after a timeout can reach the recipient twice.
``signature_secret`` verifies Vonage's signed delivery receipts; sending uses the key
and secret.
"""

from __future__ import annotations

from typing import Any

from ..base import GatewayMessage, GatewayResult, Outcome, ProbeResult
from .common import ProviderBase, ProviderConfigError, require_fields, result

# Vonage SMS API status -> (outcome, suppress, credentials refused).
# https://developer.vonage.com/messaging/sms/guides/troubleshooting-sms
VONAGE_STATUSES: dict[str, tuple[Outcome, bool, bool]] = {
    "1": (Outcome.REJECTED_TRANSIENT, False, False),  # throttled
    "2": (Outcome.REJECTED_PERMANENT, False, False),  # missing parameters
    "3": (Outcome.REJECTED_PERMANENT, False, False),  # invalid parameters
    "4": (Outcome.REJECTED_TRANSIENT, False, True),  # invalid credentials
    "5": (Outcome.REJECTED_TRANSIENT, False, False),  # internal error
    "6": (Outcome.REJECTED_PERMANENT, False, False),  # invalid message (unroutable)
    "7": (Outcome.REJECTED_PERMANENT, True, False),  # number barred
    "8": (Outcome.REJECTED_PERMANENT, False, False),  # partner account barred
    "9": (Outcome.REJECTED_TRANSIENT, False, False),  # quota / balance: fail over
    "10": (Outcome.REJECTED_TRANSIENT, False, False),  # too many existing binds
    "11": (Outcome.REJECTED_PERMANENT, False, False),  # account not enabled for HTTP
    "12": (Outcome.REJECTED_PERMANENT, False, False),  # message too long
    "14": (Outcome.REJECTED_TRANSIENT, False, True),  # invalid signature
    "15": (Outcome.REJECTED_PERMANENT, False, False),  # invalid sender address
    "22": (Outcome.REJECTED_PERMANENT, False, False),  # invalid network code
    "23": (Outcome.REJECTED_PERMANENT, False, False),  # invalid callback URL
    "29": (Outcome.REJECTED_PERMANENT, False, False),  # non-whitelisted destination
    "32": (Outcome.REJECTED_PERMANENT, False, False),  # signature and API secret disallowed
    "33": (Outcome.REJECTED_PERMANENT, True, False),  # number de-activated
}
CLIENT_REF_MAX = 100


class VonageProvider(ProviderBase):
    name = "vonage"
    default_base_url = "https://rest.nexmo.com"

    def _credentials(self) -> dict[str, str]:
        return {"api_key": self.secret("api_key"), "api_secret": self.secret("api_secret")}

    def form(self, message: GatewayMessage) -> dict[str, str]:
        payload = message.payload
        require_fields(payload, "sms", "to", "text")
        sender = payload.get("from") or self.setting("from")
        if not sender:
            raise ProviderConfigError(f"connection {self.config.key!r} (vonage) lacks 'from'")
        text = str(payload["text"])
        form = {
            **self._credentials(),
            "from": str(sender).removeprefix("+"),
            "to": str(payload["to"]).removeprefix("+"),  # Vonage wants E.164 without '+'
            "text": text,
            "client-ref": message.idempotency_key[:CLIENT_REF_MAX],
        }
        if self.setting("callback"):  # where Vonage posts delivery receipts
            form["callback"] = str(self.setting("callback"))
        if not text.isascii():  # GSM-7 would mangle it
            form["type"] = "unicode"
        return form

    async def _send(self, message: GatewayMessage, *, timeout_s: float) -> GatewayResult:
        answer = await self.request("POST", f"{self.base_url()}/sms/json", data=self.form(message))
        if not 200 <= answer.status < 300:
            return answer.status_result()
        parts: list[Any] = answer.json_object().get("messages") or []
        if not parts or not all(isinstance(part, dict) for part in parts):
            return result(
                Outcome.REJECTED_TRANSIENT,
                status_code=answer.status,
                error=f"HTTP {answer.status}: no message status in the answer",
            )
        refused = [part for part in parts if str(part.get("status")) != "0"]
        if not refused:
            return result(
                Outcome.ACCEPTED,
                status_code=answer.status,
                message_id=str(parts[0].get("message-id") or ""),
            )
        part = refused[0]
        code = str(part.get("status"))
        outcome, suppress, auth_failed = VONAGE_STATUSES.get(
            code, (Outcome.REJECTED_PERMANENT, False, False)
        )
        return result(
            outcome,
            status_code=answer.status,
            error=f"Vonage status {code}: {part.get('error-text') or 'no error text'}",
            suppress=suppress,
            auth_failed=auth_failed,
            provider_code=code,
        )

    async def _probe(self, *, timeout_s: float) -> ProbeResult:
        """An account read: ``GET /account/get-balance``."""
        answer = await self.request(
            "GET", f"{self.base_url()}/account/get-balance", params=self._credentials()
        )
        if answer.status == 200 and "value" in answer.json_object():
            return ProbeResult(True, f"balance {answer.json_object()['value']}")
        if answer.status in (401, 403):
            self.invalidate_secrets()
        return ProbeResult(False, f"HTTP {answer.status}: {answer.text_snippet()}")
