"""SES events (configuration-set event publishing, ``eventType``) and SES notifications
(identity feedback, ``notificationType``) as receipts.

Both forms carry the same ``mail`` object (``mail.messageId`` is the ``MessageId`` that
``SendEmail`` answered, the attempt's message id) and the same per-event objects:

| event | receipt | provider_status | error_code | suppresses |
|---|---|---|---|---|
| Send | sent | Send | | |
| Delivery | delivered | Delivery | | |
| DeliveryDelay | sent | DeliveryDelay | ``delayType`` | |
| Bounce, Permanent | undelivered | Bounce:Permanent | ``bounceSubType`` | the bounced addresses |
| Bounce, Transient / Undetermined | undelivered | Bounce:Transient | ``bounceSubType`` | |
| Complaint | delivered | Complaint | ``complaintFeedbackType`` | the complaining addresses |
| Reject | undelivered | Reject | ``reject.reason`` | |

A complaint means the mail *was* delivered and its recipient does not want more: the
status says so, and the recipient goes on the list. Other events (Open, Click,
Rendering Failure, Subscription) say nothing about delivery and are no receipt.
"""

from __future__ import annotations

from typing import Any

from ..base import ParsedReceipt, ReceiptInvalid
from ..receipts import parse_timestamp


def ses_event_receipts(event: Any) -> list[ParsedReceipt]:
    """The receipt an SES event or notification holds (none for the other events)."""
    if not isinstance(event, dict):
        raise ReceiptInvalid("SES event is not a JSON object")
    kind = event.get("eventType") or event.get("notificationType")
    mail = event.get("mail")
    if not isinstance(mail, dict) or not isinstance(mail.get("messageId"), str):
        raise ReceiptInvalid("SES event lacks mail.messageId")
    message_id = mail["messageId"][:128]
    detail = _detail(event, kind)
    when = detail.get("timestamp") or mail.get("timestamp")

    def receipt(status: str, provider_status: str, code: str = "", **kw: Any) -> ParsedReceipt:
        try:
            occurred_at = parse_timestamp(when)
        except ValueError:
            raise ReceiptInvalid(f"SES {kind} timestamp is not ISO 8601") from None
        return ParsedReceipt(
            message_id=message_id,
            status=status,
            provider_status=provider_status,
            error_code=str(code or "")[:64],
            occurred_at=occurred_at,
            **kw,
        )

    if kind == "Send":
        return [receipt("sent", "Send")]
    if kind == "Delivery":
        return [receipt("delivered", "Delivery")]
    if kind == "DeliveryDelay":
        return [receipt("sent", "DeliveryDelay", detail.get("delayType", ""))]
    if kind == "Bounce":
        permanent = detail.get("bounceType") == "Permanent"
        return [
            receipt(
                "undelivered",
                f"Bounce:{detail.get('bounceType') or 'Undetermined'}",
                detail.get("bounceSubType", ""),
                permanent=permanent,
                recipients=_addresses(detail.get("bouncedRecipients")),
            )
        ]
    if kind == "Complaint":
        return [
            receipt(
                "delivered",
                "Complaint",
                detail.get("complaintFeedbackType") or "complaint",
                permanent=True,
                recipients=_addresses(detail.get("complainedRecipients")),
            )
        ]
    if kind == "Reject":
        return [receipt("undelivered", "Reject", detail.get("reason", ""))]
    return []


# The object each event keeps its details in (the key is the event's name, camel-cased).
_DETAIL_KEY = {
    "Send": "send",
    "Delivery": "delivery",
    "DeliveryDelay": "deliveryDelay",
    "Bounce": "bounce",
    "Complaint": "complaint",
    "Reject": "reject",
}


def _detail(event: dict[str, Any], kind: Any) -> dict[str, Any]:
    detail = event.get(_DETAIL_KEY.get(str(kind), ""), {})
    return detail if isinstance(detail, dict) else {}


def _addresses(entries: Any) -> tuple[str, ...]:
    if not isinstance(entries, list):
        return ()
    return tuple(
        e["emailAddress"].strip().lower()
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("emailAddress"), str)
    )
