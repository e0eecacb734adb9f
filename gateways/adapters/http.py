"""Generic HTTP gateway: the payload posted as is to ``GATEWAY_HTTP_URL``; status lookups
at ``GATEWAY_HTTP_STATUS_URL``."""

from __future__ import annotations

from typing import Any

from .base_http import HttpGatewayBase


class HttpGateway(HttpGatewayBase):
    name = "http"
    url_setting = "GATEWAY_HTTP_URL"
    status_url_setting = "GATEWAY_HTTP_STATUS_URL"

    def build_body(self, payload: dict[str, Any]) -> dict[str, Any]:
        return payload
