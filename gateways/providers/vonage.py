"""Vonage SMS API: ``POST https://rest.nexmo.com/sms/json`` (form-encoded).

Vonage answers HTTP 200 for nearly every refusal: each message part carries its own
``status`` code in the JSON body, and that code decides the outcome and suppression.
``client-ref`` carries the idempotency key for receipts and reports, but Vonage does
not deduplicate on it: a resend after a timeout can reach the recipient twice.
``signature_secret`` verifies Vonage's signed delivery receipts; sending uses the key
and secret.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

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
from .common import ProviderBase, ProviderConfigError, require_fields, result

# A signed DLR's status -> our receipt status; "unknown" says nothing: not stored.
VONAGE_RECEIPT_STATUSES = {
    "delivered": "delivered",
    "failed": "undelivered",
    "rejected": "undelivered",
    "expired": "undelivered",
    "accepted": "sent",
    "buffered": "sent",
}
# DLR err-code: 3 absent subscriber (permanent), 4 barred by the user, 9 illegal number.
VONAGE_PERMANENT_RECEIPT_CODES = frozenset({"3", "4", "9"})
SIGNATURE_METHODS = {"md5": "md5", "sha1": "sha1", "sha256": "sha256", "sha512": "sha512"}
SIGNATURE_MAX_AGE_S = 300


def vonage_signature(secret: str, method: str, params: Mapping[str, Any]) -> str:
    """The ``sig`` of a signed Vonage request: ``&key=value`` for each parameter but
    ``sig``, sorted by key (``&`` and ``=`` in values replaced by ``_``), hashed with an
    HMAC of ``method`` keyed by the signature secret, or, for ``md5hash`` (the legacy
    method), an MD5 of that text followed by the secret. Lower-case hex."""
    text = "".join(
        "&{}={}".format(key, str(params[key]).replace("&", "_").replace("=", "_"))
        for key in sorted(params)
        if key != "sig"
    ).encode()
    if method == "md5hash":
        return hashlib.md5(text + secret.encode(), usedforsecurity=False).hexdigest()
    digest = SIGNATURE_METHODS.get(method)
    if digest is None:
        raise ReceiptRejected(f"unknown signature_method {method!r}")
    return hmac.new(secret.encode(), text, digest).hexdigest()


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

    # --- receipts: signed delivery receipts (DLRs) -----------------------------------

    @classmethod
    def receipts_expected(cls, config: ConnectionConfig) -> bool:
        """Vonage posts DLRs to the account's webhook; only signed ones are read."""
        return bool(config.secrets.get("signature_secret"))

    @classmethod
    def parse_receipt(
        cls,
        config: ConnectionConfig,
        request: ReceiptRequest,
        secrets: SecretSource,
        *,
        now: float | None = None,
    ) -> list[ParsedReceipt]:
        reference = config.secrets.get("signature_secret")
        if not reference:
            raise ReceiptRejected(f"connection {config.key!r} has no signature_secret")
        params = dict(request.form) if request.form else _json_params(request.body)
        given = str(params.get("sig", "")).lower()
        method = str(config.settings.get("signature_method") or "sha256")
        expected = vonage_signature(secrets.get(reference), method, params)
        if not given or not hmac.compare_digest(given.encode(), expected.encode()):
            raise ReceiptRejected("Vonage sig does not match")
        try:
            signed_at = float(params.get("timestamp", ""))
        except ValueError:
            raise ReceiptRejected("signed DLR lacks its timestamp") from None
        if abs((time.time() if now is None else now) - signed_at) > SIGNATURE_MAX_AGE_S:
            raise ReceiptRejected("signed DLR is more than 5 minutes old (or ahead)")
        provider_status = str(params.get("status", ""))
        status = VONAGE_RECEIPT_STATUSES.get(provider_status)
        message_id = str(params.get("messageId", ""))
        if status is None or not message_id:
            return []
        code = str(params.get("err-code", ""))
        code = "" if code == "0" else code
        return [
            ParsedReceipt(
                message_id=message_id[:128],
                status=status,
                provider_status=provider_status,
                error_code=code[:64],
                occurred_at=_scts(params.get("scts")),
                permanent=status == "undelivered" and code in VONAGE_PERMANENT_RECEIPT_CODES,
            )
        ]


def _json_params(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body) if body else {}
    except (ValueError, UnicodeDecodeError):
        raise ReceiptInvalid("DLR body is neither a form nor JSON") from None
    if not isinstance(data, dict):
        raise ReceiptInvalid("DLR body is not a JSON object")
    return data


def _scts(value: Any) -> dt.datetime | None:
    """The carrier's time of the status, ``YYMMDDHHMM`` (UTC); None when unreadable."""
    try:
        return dt.datetime.strptime(str(value), "%y%m%d%H%M").replace(tzinfo=dt.UTC)
    except ValueError:
        return None
