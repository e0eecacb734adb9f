from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import cast

from django.http import HttpRequest, HttpResponse

from .context import request_id_from_headers, request_id_var
from .logging import get_logger

logger = get_logger("portal.http")
_stdlib_logger = logging.getLogger("portal.http")

# Probes and scrapes arrive every few seconds; their access lines are debug-level noise.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class IdentifiedRequest(HttpRequest):
    """A request once ``RequestIdMiddleware`` has run: for type checking only."""

    request_id: str


class RequestIdMiddleware:
    """Give every request a correlation id, echo it as ``X-Request-ID``, log one line.

    The id is the client's ``X-Request-ID`` when sane, else the W3C ``traceparent``
    trace id, else a new one; every log line written while serving the request carries
    it as ``correlation_id``, and the intent it creates keeps it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from_headers(
            request.headers.get("X-Request-ID"), request.headers.get("traceparent")
        )
        cast(IdentifiedRequest, request).request_id = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            quiet = request.path in QUIET_PATHS
            # Checked first: a structlog call costs more than the request's own work in
            # the API's hot path even when its level is off (a benchmark's WARNING).
            if _stdlib_logger.isEnabledFor(logging.DEBUG if quiet else logging.INFO):
                # The path only: a query string may carry something that is not ours to log.
                (logger.debug if quiet else logger.info)(
                    "http.request",
                    method=request.method,
                    path=request.path,
                    status=response.status_code,
                    duration_ms=round((time.perf_counter() - started) * 1000, 1),
                )
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response
