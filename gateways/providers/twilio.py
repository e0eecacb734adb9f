"""Twilio Programmable Messaging: ``POST /2010-04-01/Accounts/{sid}/Messages.json``.

Form-encoded ``To``, ``Body`` and ``From`` (or ``MessagingServiceSid``), HTTP basic
auth ``account_sid:auth_token``. A refusal carries Twilio's own error ``code`` in a
JSON body; that code, not the HTTP status alone, decides the outcome and whether the
number is suppressed. Twilio's Messages API takes no idempotency key: a resend after a
timeout can reach the recipient twice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote

import httpx

from ..base import (
    ConnectionConfig,
    GatewayMessage,
    GatewayResult,
    Outcome,
    ParsedReceipt,
    ProbeResult,
    ReceiptRejected,
    ReceiptRequest,
    SecretSource,
)
from .common import ProviderBase, ProviderConfigError, require_fields, result

# MessageStatus of a status callback -> our receipt status. queued / sending / accepted /
# scheduled say nothing about delivery: acknowledged, not stored.
TWILIO_RECEIPT_STATUSES = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "undelivered",
}
# Receipt ErrorCodes that mean this number can never be reached: suppress it.
TWILIO_PERMANENT_RECEIPT_CODES = frozenset({"21610", "21614", "30005", "30006"})


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """``X-Twilio-Signature``: base64 HMAC-SHA1 over the URL followed by each POST
    parameter's name and value, sorted by name (twilio.com/docs/usage/security)."""
    signed = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


# Twilio error code -> (outcome, suppress the recipient). https://www.twilio.com/docs/api/errors
TWILIO_CODES: dict[int, tuple[Outcome, bool]] = {
    21211: (Outcome.REJECTED_PERMANENT, True),  # invalid 'To' phone number
    21214: (Outcome.REJECTED_PERMANENT, True),  # 'To' phone number cannot be reached
    21610: (Outcome.REJECTED_PERMANENT, True),  # recipient replied STOP (unsubscribed)
    21612: (Outcome.REJECTED_PERMANENT, True),  # 'To' number not reachable via SMS
    21614: (Outcome.REJECTED_PERMANENT, True),  # 'To' number is not a mobile number
    21408: (Outcome.REJECTED_PERMANENT, False),  # sending to this region not enabled
    21606: (Outcome.REJECTED_PERMANENT, False),  # 'From' number cannot send SMS
    21602: (Outcome.REJECTED_PERMANENT, False),  # message body required
    21617: (Outcome.REJECTED_PERMANENT, False),  # body exceeds 1600 characters
    20003: (Outcome.REJECTED_TRANSIENT, False),  # authentication: re-read secrets, fail over
    20429: (Outcome.REJECTED_TRANSIENT, False),  # too many requests
    30001: (Outcome.REJECTED_TRANSIENT, False),  # queue overflow
}


class TwilioProvider(ProviderBase):
    name = "twilio"
    default_base_url = "https://api.twilio.com"

    def _account_url(self, suffix: str) -> str:
        sid = str(self.required_setting("account_sid"))
        return f"{self.base_url()}/2010-04-01/Accounts/{quote(sid, safe='')}{suffix}"

    def _auth(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(str(self.required_setting("account_sid")), self.secret("auth_token"))

    async def _send(self, message: GatewayMessage, *, timeout_s: float) -> GatewayResult:
        payload = message.payload
        require_fields(payload, "sms", "to", "text")
        form = {"To": str(payload["to"]), "Body": str(payload["text"])}
        sender = payload.get("from") or self.setting("from")
        service = self.setting("messaging_service_sid")
        if sender:
            form["From"] = str(sender)
        elif service:
            form["MessagingServiceSid"] = str(service)
        else:
            raise ProviderConfigError(
                f"connection {self.config.key!r} (twilio) needs 'from' or 'messaging_service_sid'"
            )
        if self.setting("status_callback"):  # where Twilio posts delivery receipts
            form["StatusCallback"] = str(self.setting("status_callback"))
        answer = await self.request(
            "POST",
            self._account_url("/Messages.json"),
            data=form,
            auth=self._auth(),
            headers={"X-Request-ID": message.correlation_id or message.idempotency_key},
        )
        body = answer.json_object()
        if 200 <= answer.status < 300:
            return answer.status_result(message_id=str(body.get("sid") or ""))
        code = body.get("code")
        text = str(body.get("message") or "") or answer.text_snippet()
        if isinstance(code, int) and code in TWILIO_CODES:
            outcome, suppress = TWILIO_CODES[code]
            return result(
                outcome,
                status_code=answer.status,
                retry_after_s=answer.retry_after(),
                error=f"HTTP {answer.status}: Twilio {code}: {text}",
                suppress=suppress,
                auth_failed=answer.status in (401, 403) or code == 20003,
                provider_code=code,
            )
        detail = f"Twilio {code}: {text}" if code is not None else text
        return answer.status_result(provider_code=str(code or ""), detail=detail)

    async def _probe(self, *, timeout_s: float) -> ProbeResult:
        """An account read: ``GET /2010-04-01/Accounts/{sid}.json``."""
        answer = await self.request("GET", self._account_url(".json"), auth=self._auth())
        if answer.status == 200:
            status = answer.json_object().get("status", "unknown")
            return ProbeResult(True, f"account status {status}")
        if answer.status in (401, 403):
            self.invalidate_secrets()
        return ProbeResult(False, f"HTTP {answer.status}: {answer.text_snippet()}")

    # --- receipts: status callbacks, signed with the auth token ----------------------

    @classmethod
    def receipts_expected(cls, config: ConnectionConfig) -> bool:
        """Twilio calls back only where the send named a ``StatusCallback`` (or the
        messaging service has one: ``receipts = true``)."""
        return bool(config.settings.get("status_callback") or config.settings.get("receipts"))

    @classmethod
    def parse_receipt(
        cls, config: ConnectionConfig, request: ReceiptRequest, secrets: SecretSource
    ) -> list[ParsedReceipt]:
        reference = config.secrets.get("auth_token")
        if not reference:
            raise ReceiptRejected(f"connection {config.key!r} has no auth_token to verify with")
        given = request.headers.get("x-twilio-signature", "")
        # Twilio signs the URL it called: the status_callback we gave it (behind a proxy
        # the URL this process sees may differ in scheme or host).
        url = str(config.settings.get("status_callback") or request.url)
        expected = twilio_signature(secrets.get(reference), url, request.form)
        if not given or not hmac.compare_digest(given.encode(), expected.encode()):
            raise ReceiptRejected("X-Twilio-Signature does not match")
        provider_status = request.form.get("MessageStatus", "")
        status = TWILIO_RECEIPT_STATUSES.get(provider_status)
        message_id = request.form.get("MessageSid", "")
        if status is None or not message_id:
            return []
        code = request.form.get("ErrorCode", "")
        return [
            ParsedReceipt(
                message_id=message_id[:128],
                status=status,
                provider_status=provider_status,
                error_code=code[:64],
                occurred_at=None,  # a status callback carries no time of its own
                permanent=status == "undelivered" and code in TWILIO_PERMANENT_RECEIPT_CODES,
            )
        ]
