"""Amazon SES v2 ``SendEmail`` (REST-JSON, SigV4-signed), with raw MIME content.

The message is built by the same MIME builder as ``smtp`` (text/HTML alternatives,
``Reply-To``, custom headers) and sent as ``Content.Raw``; the envelope recipients,
``bcc`` included, go into ``Destination``. SES takes no idempotency key: a resend after
a timeout can arrive twice. Hard bounces and complaints arrive later as SES events
(delivery receipts); SES refuses synchronously only what its account or sender cannot
send, so few codes here suppress.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from ..base import GatewayMessage, GatewayResult, Outcome, ProbeResult
from .aws import AwsProvider, aws_error, classify_aws_error
from .common import HttpAnswer, result
from .smtp import addresses, build_email, message_id_for

PERMANENT_CODES = frozenset(
    {
        "MessageRejected",
        "MailFromDomainNotVerifiedException",
        "NotFoundException",
        "BadRequestException",
        "InvalidParameterValue",
        "ConfigurationSetDoesNotExist",
    }
)
# The account cannot send now: another connection (an SMTP backup) may.
TRANSIENT_CODES = frozenset(
    {"AccountSuspendedException", "SendingPausedException", "InternalFailure", "ServiceUnavailable"}
)


class SesProvider(AwsProvider):
    name = "ses"
    service = "ses"
    endpoint_prefix = "email"

    def request_body(self, message: GatewayMessage) -> dict[str, Any]:
        sender = str(self.required_setting("from"))
        payload = message.payload
        mail, _ = build_email(
            payload, sender=sender, message_id=message_id_for(message.idempotency_key, sender)
        )
        destination = {
            "ToAddresses": addresses(payload.get("to"), "to"),
            "CcAddresses": addresses(payload.get("cc"), "cc"),
            "BccAddresses": addresses(payload.get("bcc"), "bcc"),
        }
        body: dict[str, Any] = {
            "FromEmailAddress": sender,
            "Destination": {k: v for k, v in destination.items() if v},
            "Content": {"Raw": {"Data": base64.b64encode(mail.as_bytes()).decode()}},
        }
        if self.setting("configuration_set"):
            body["ConfigurationSetName"] = str(self.setting("configuration_set"))
        return body

    async def _call(self, method: str, path: str, body: bytes = b"") -> HttpAnswer:
        return await self.signed_request(
            method, f"{self.base_url()}{path}", body=body, content_type="application/json"
        )

    async def _send(self, message: GatewayMessage, *, timeout_s: float) -> GatewayResult:
        body = json.dumps(self.request_body(message)).encode()
        answer = await self._call("POST", "/v2/email/outbound-emails", body)
        if 200 <= answer.status < 300:
            message_id = str(answer.json_object().get("MessageId") or "")
            return result(Outcome.ACCEPTED, status_code=answer.status, message_id=message_id)
        code, text = aws_error(answer)
        # SES v1 and v2 both refuse an address on the account's suppression list this way.
        on_suppression_list = code == "MessageRejected" and "blacklisted" in text.lower()
        return classify_aws_error(
            answer,
            permanent=PERMANENT_CODES,
            transient=TRANSIENT_CODES,
            suppress=on_suppression_list,
        )

    async def _probe(self, *, timeout_s: float) -> ProbeResult:
        """A quota read: ``GetAccount`` (``GET /v2/email/account``)."""
        answer = await self._call("GET", "/v2/email/account")
        if answer.status == 200:
            data = answer.json_object()
            quota = data.get("SendQuota") or {}
            enabled = data.get("SendingEnabled")
            return ProbeResult(
                bool(enabled),
                f"sending enabled: {enabled}; 24 h quota {quota.get('Max24HourSend')}, "
                f"sent {quota.get('SentLast24Hours')}",
            )
        refused = classify_aws_error(answer)
        if refused.auth_failed:
            self.invalidate_secrets()
        return ProbeResult(False, refused.error)
