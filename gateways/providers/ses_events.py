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

from collections.abc import Callable
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
    fields_of = _RECEIPT_FIELDS.get(kind) if isinstance(kind, str) else None
    if fields_of is None:
        return []
    detail = _detail(event, kind)
    try:
        occurred_at = parse_timestamp(detail.get("timestamp") or mail.get("timestamp"))
    except ValueError:
        raise ReceiptInvalid(f"SES {kind} timestamp is not ISO 8601") from None
    fields = fields_of(detail)
    fields["error_code"] = str(fields.get("error_code") or "")[:64]
    return [ParsedReceipt(message_id=mail["messageId"][:128], occurred_at=occurred_at, **fields)]


def _bounce(detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": "undelivered",
        "provider_status": f"Bounce:{detail.get('bounceType') or 'Undetermined'}",
        "error_code": detail.get("bounceSubType", ""),
        "permanent": detail.get("bounceType") == "Permanent",
        "recipients": _addresses(detail.get("bouncedRecipients")),
    }


def _complaint(detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": "delivered",
        "provider_status": "Complaint",
        "error_code": detail.get("complaintFeedbackType") or "complaint",
        "permanent": True,
        "recipients": _addresses(detail.get("complainedRecipients")),
    }


# Each event that is a receipt -> its ``ParsedReceipt`` fields from the event's details
# (``error_code`` as the event gives it): the table in this module's docstring.
_RECEIPT_FIELDS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "Send": lambda detail: {"status": "sent", "provider_status": "Send"},
    "Delivery": lambda detail: {"status": "delivered", "provider_status": "Delivery"},
    "DeliveryDelay": lambda detail: {
        "status": "sent",
        "provider_status": "DeliveryDelay",
        "error_code": detail.get("delayType", ""),
    },
    "Bounce": _bounce,
    "Complaint": _complaint,
    "Reject": lambda detail: {
        "status": "undelivered",
        "provider_status": "Reject",
        "error_code": detail.get("reason", ""),
    },
}


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
