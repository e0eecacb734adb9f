"""Push gateway: ``{"token", ...}`` posted to ``GATEWAY_PUSH_URL``; status lookups at
``GATEWAY_PUSH_STATUS_URL``."""

from __future__ import annotations

from typing import Any

from .base_http import GatewayPayloadError, HttpGatewayBase


class PushGateway(HttpGatewayBase):
    name = "push"
    url_setting = "GATEWAY_PUSH_URL"
    status_url_setting = "GATEWAY_PUSH_STATUS_URL"

    def build_body(self, payload: dict[str, Any]) -> dict[str, Any]:
        if not payload.get("token"):
            raise GatewayPayloadError("push payload has no 'token'")
        return {"token": payload["token"], **payload}
