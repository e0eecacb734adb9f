"""Email through the simulator: ``{"to", "subject", "text"/"html", ...}`` posted to
``GATEWAY_EMAIL_URL``; status lookups at ``GATEWAY_EMAIL_STATUS_URL``.

Real mail leaves through the ``smtp`` or ``ses`` providers; this adapter is the default
``simulator-email`` connection's, so an email target works with zero configuration.
"""

from __future__ import annotations

from typing import Any

from .base_http import GatewayPayloadError, HttpGatewayBase


class EmailGateway(HttpGatewayBase):
    name = "email"
    url_setting = "GATEWAY_EMAIL_URL"
    status_url_setting = "GATEWAY_EMAIL_STATUS_URL"

    def build_body(self, payload: dict[str, Any]) -> dict[str, Any]:
        if not payload.get("to"):
            raise GatewayPayloadError("email payload has no 'to'")
        if not payload.get("text") and not payload.get("html"):
            raise GatewayPayloadError("email payload has neither 'text' nor 'html'")
        return {"to": payload["to"], "subject": payload.get("subject", ""), **payload}
