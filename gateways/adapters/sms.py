"""SMS gateway: ``{"to", "text", ...}`` posted to ``GATEWAY_SMS_URL``; status lookups at
``GATEWAY_SMS_STATUS_URL``."""

from __future__ import annotations

from typing import Any

from .base_http import GatewayPayloadError, HttpGatewayBase


class SmsGateway(HttpGatewayBase):
    name = "sms"
    url_setting = "GATEWAY_SMS_URL"
    status_url_setting = "GATEWAY_SMS_STATUS_URL"

    def build_body(self, payload: dict[str, Any]) -> dict[str, Any]:
        missing = [field for field in ("to", "text") if field not in payload]
        if missing or not payload["to"]:
            raise GatewayPayloadError(f"sms payload lacks {', '.join(missing) or 'to'}")
        # The provider's fields first; any extra fields of the contract pass through.
        return {"to": payload["to"], "text": payload["text"], **payload}
