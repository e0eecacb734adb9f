"""Receipts in the Standard Webhooks form, shared by the ``simulator`` and ``webhook``
providers: body ``{"message_id", "status", "error_code"?, "occurred_at"}``, signed with
the connection's ``receipt_secret`` (``whsec_…``) as the specification says.

Verification is the ``standardwebhooks`` package's own (signature over
``id.timestamp.body``, timestamp within five minutes of now), so we accept exactly what
any conforming sender produces. Also here: the one entry point the receipts view calls.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError, WebhookVerificationError

from .base import (
    RECEIPT_STATUSES,
    ConnectionConfig,
    ParsedReceipt,
    ReceiptInvalid,
    ReceiptRejected,
    ReceiptRequest,
    SecretSource,
)
from .providers import provider_class


def provider_parses_receipts(config: ConnectionConfig) -> bool:
    """Whether this connection's provider can read receipts at all."""
    return hasattr(provider_class(config.provider), "parse_receipt")


def receipts_expected(config: ConnectionConfig) -> bool:
    """Whether this connection is set up to send receipts (else delivery is ``unknown``)."""
    cls: Any = provider_class(config.provider)
    check = getattr(cls, "receipts_expected", None)
    return bool(check(config)) if check is not None else False


def parse_receipt(
    config: ConnectionConfig, request: ReceiptRequest, secrets: SecretSource
) -> list[ParsedReceipt]:
    """The receipts of one request, verified by the connection's provider; raises
    ``ReceiptRejected`` when the provider takes none or the signature is wrong."""
    cls: Any = provider_class(config.provider)
    if not hasattr(cls, "parse_receipt"):
        raise ReceiptRejected(f"provider {config.provider!r} sends no receipts")
    parsed: list[ParsedReceipt] = cls.parse_receipt(config, request, secrets)
    return parsed


def verify_standard_webhook(secret: str, request: ReceiptRequest) -> Any:
    """The JSON body, once its Standard Webhooks signature checks out with ``secret``
    (several space-separated secrets: any of them, as during a rotation)."""
    headers = dict(request.headers)
    for one in secret.split():
        try:
            return Webhook(one).verify(request.body, headers)
        except WebhookVerificationError:
            continue
        except (EmptyWebhookSecretError, ValueError):
            raise ReceiptRejected("the connection's receipt_secret is not whsec_<base64>") from None
    raise ReceiptRejected("Standard Webhooks signature does not match (or is stale)")


def parse_timestamp(value: Any) -> dt.datetime | None:
    """An ISO 8601 time (``Z`` or an offset), as an aware UTC datetime; None if absent."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError("occurred_at must be an ISO 8601 string")
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("occurred_at must carry a time zone")
    return parsed.astimezone(dt.UTC)


def standard_receipt(data: Any, *, permanent_codes: frozenset[str]) -> ParsedReceipt:
    """A verified ``{"message_id", "status", "error_code"?, "occurred_at"}`` body."""
    if not isinstance(data, dict):
        raise ReceiptInvalid("receipt body is not a JSON object")
    message_id = data.get("message_id")
    status = data.get("status")
    if not isinstance(message_id, str) or not message_id:
        raise ReceiptInvalid("receipt lacks message_id")
    if status not in RECEIPT_STATUSES:
        raise ReceiptInvalid(f"receipt status must be one of {', '.join(RECEIPT_STATUSES)}")
    error_code = data.get("error_code")
    error_code = "" if error_code is None else str(error_code)[:64]
    try:
        occurred_at = parse_timestamp(data.get("occurred_at"))
    except ValueError as exc:
        raise ReceiptInvalid(str(exc)) from None
    return ParsedReceipt(
        message_id=message_id[:128],
        status=str(status),
        provider_status=str(status),
        error_code=error_code,
        occurred_at=occurred_at,
        permanent=status == "undelivered" and error_code in permanent_codes,
    )


def json_body(request: ReceiptRequest) -> Any:
    try:
        return json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise ReceiptInvalid("receipt body is not JSON") from None
