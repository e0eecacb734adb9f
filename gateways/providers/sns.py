"""Amazon SNS SMS: ``Publish`` with ``PhoneNumber`` (the query API, SigV4-signed).

``sender_id`` and ``sms_type`` become the ``AWS.SNS.SMS.SenderID`` / ``SMSType``
message attributes (a payload ``from`` overrides the sender id). SNS takes no
deduplication id for SMS: a resend after a timeout can reach the phone twice. An
invalid phone number is a permanent, suppressing refusal; whether the recipient opted
out is known only later, through delivery status logs.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from ..base import GatewayMessage, GatewayResult, Outcome, ProbeResult
from .aws import AwsProvider, aws_error, classify_aws_error
from .common import HttpAnswer, ProviderConfigError, require_fields, result

API_VERSION = "2010-03-31"
MESSAGE_ID = re.compile(r"<MessageId>([^<]{1,128})</MessageId>")
SMS_TYPES = ("Transactional", "Promotional")
PERMANENT_CODES = frozenset(
    {
        "InvalidParameter",
        "InvalidParameterValue",
        "ValidationException",
        "VerificationException",
        "EndpointDisabled",
        "NotFound",
        "OptedOut",
    }
)
TRANSIENT_CODES = frozenset(
    {"InternalError", "InternalFailure", "ServiceUnavailable", "KMSThrottling"}
)


class SnsProvider(AwsProvider):
    name = "sns"
    service = "sns"
    endpoint_prefix = "sns"

    def form(self, message: GatewayMessage) -> list[tuple[str, str]]:
        payload = message.payload
        require_fields(payload, "sms", "to", "text")
        fields = [
            ("Action", "Publish"),
            ("Version", API_VERSION),
            ("PhoneNumber", str(payload["to"])),
            ("Message", str(payload["text"])),
        ]
        attributes = []
        sender_id = payload.get("from") or self.setting("sender_id")
        if sender_id:
            attributes.append(("AWS.SNS.SMS.SenderID", str(sender_id)))
        sms_type = self.setting("sms_type")
        if sms_type:
            if sms_type not in SMS_TYPES:
                raise ProviderConfigError(
                    f"connection {self.config.key!r} (sns): sms_type {sms_type!r} is not one "
                    f"of {', '.join(SMS_TYPES)}"
                )
            attributes.append(("AWS.SNS.SMS.SMSType", str(sms_type)))
        for n, (name, value) in enumerate(attributes, start=1):
            prefix = f"MessageAttributes.entry.{n}"
            fields += [
                (f"{prefix}.Name", name),
                (f"{prefix}.Value.DataType", "String"),
                (f"{prefix}.Value.StringValue", value),
            ]
        return fields

    async def _query(self, fields: list[tuple[str, str]]) -> HttpAnswer:
        return await self.signed_request(
            "POST",
            f"{self.base_url()}/",
            body=urlencode(fields).encode(),
            content_type="application/x-www-form-urlencoded; charset=utf-8",
        )

    async def _send(self, message: GatewayMessage, *, timeout_s: float) -> GatewayResult:
        answer = await self._query(self.form(message))
        if 200 <= answer.status < 300:
            found = MESSAGE_ID.search(answer.raw.decode("utf-8", errors="replace"))
            return result(
                Outcome.ACCEPTED,
                status_code=answer.status,
                message_id=found.group(1) if found else "",
            )
        code, text = aws_error(answer)
        # "Invalid parameter: PhoneNumber Reason: ..." is the number itself; other invalid
        # parameters (a sender id, an attribute) are ours and say nothing of the recipient.
        about_the_number = "phonenumber" in text.lower() or "e164" in text.lower()
        return classify_aws_error(
            answer,
            permanent=PERMANENT_CODES,
            transient=TRANSIENT_CODES,
            suppress=about_the_number and code in PERMANENT_CODES,
        )

    async def _probe(self, *, timeout_s: float) -> ProbeResult:
        """An account read: ``GetSMSAttributes``."""
        answer = await self._query([("Action", "GetSMSAttributes"), ("Version", API_VERSION)])
        if answer.status == 200:
            return ProbeResult(True, "GetSMSAttributes ok")
        refused = classify_aws_error(answer)
        if refused.auth_failed:
            self.invalidate_secrets()
        return ProbeResult(False, refused.error)
