"""Amazon SES v2 ``SendEmail`` (REST-JSON, SigV4-signed), with raw MIME content.

The message is built by the same MIME builder as ``smtp`` (text/HTML alternatives,
``Reply-To``, custom headers) and sent as ``Content.Raw``; the envelope recipients,
``bcc`` included, go into ``Destination``. SES takes no idempotency key: a resend after
a timeout can arrive twice. Hard bounces and complaints arrive later as SES events
(delivery receipts); SES refuses synchronously only what its account or sender cannot
send, so few codes here suppress.

Receipts: SES publishes its events to an SNS topic (``receipts_topic_arn``), which posts
them to ``/hooks/receipts/{connection}`` over an HTTP(S) subscription. Each message's
SNS signature is verified (``gateways.sns_messages``) and its topic must be that one;
the subscription's confirmation is visited once verified, and audited.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from portal import clock
from portal.audit.services import Actor, audit_record
from portal.observability.logging import get_logger

from ..base import (
    ConnectionConfig,
    GatewayMessage,
    GatewayResult,
    Outcome,
    ParsedReceipt,
    ProbeResult,
    ReceiptInvalid,
    ReceiptRejected,
    ReceiptRequest,
    SecretSource,
)
from ..sns_messages import sns_message_verify, sns_subscription_confirm
from .aws import AwsProvider, aws_error, classify_aws_error
from .common import HttpAnswer, result
from .ses_events import ses_event_receipts
from .smtp import addresses, build_email, message_id_for

log = get_logger(__name__)

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

    # --- receipts: SES events through an SNS HTTP(S) subscription ---------------------

    @classmethod
    def receipts_expected(cls, config: ConnectionConfig) -> bool:
        """SES publishes events only where a configuration set sends them to the SNS
        topic this connection names."""
        return bool(config.settings.get("receipts_topic_arn"))

    @classmethod
    def parse_receipt(
        cls, config: ConnectionConfig, request: ReceiptRequest, secrets: SecretSource
    ) -> list[ParsedReceipt]:
        topic = str(config.settings.get("receipts_topic_arn") or "")
        if not topic:
            raise ReceiptRejected(f"connection {config.key!r} names no receipts_topic_arn")
        message = sns_message_verify(request.body, now=clock.now())
        # Any AWS account can sign a message for its own topic: only ours counts.
        if message.topic_arn != topic:
            raise ReceiptRejected(f"SNS topic {message.topic_arn[:256]!r} is not {topic!r}")
        header = request.headers.get("x-amz-sns-message-type")
        if header and header != message.type:
            raise ReceiptInvalid("x-amz-sns-message-type disagrees with the message's Type")
        if message.type == "SubscriptionConfirmation":
            sns_subscription_confirm(message)
            cls._subscription_audited(config, message.topic_arn, "confirmed")
            return []
        if message.type == "UnsubscribeConfirmation":
            # Not followed: re-subscribing is an operator's decision, not ours.
            cls._subscription_audited(config, message.topic_arn, "unsubscribed")
            return []
        try:
            event = json.loads(message.message)
        except ValueError:
            raise ReceiptInvalid("SNS Message is not an SES event (not JSON)") from None
        return ses_event_receipts(event)

    @staticmethod
    def _subscription_audited(config: ConnectionConfig, topic_arn: str, what: str) -> None:
        log.info("receipts.sns_subscription", connection=config.key, topic=topic_arn, change=what)
        audit_record(
            actor=Actor.system("sns"),
            action=f"connection.receipts_subscription_{what}",
            object_type="connection",
            object_id=config.key,
            data={"topic_arn": topic_arn},
        )
