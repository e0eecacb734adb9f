"""The correlation id of the work in hand: from the HTTP request or the intent."""

from __future__ import annotations

import contextvars
import re
import uuid

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
# Payload field names the current target's contract marks as sensitive; the log
# redaction blanks them at any depth while the engine works on that intent.
sensitive_fields_var: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "sensitive_fields", default=frozenset()
)

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id_from_headers(x_request_id: str | None, traceparent: str | None) -> str:
    """The client's X-Request-ID when it is sane, else the W3C trace id, else a new id."""
    if x_request_id and _VALID_REQUEST_ID.match(x_request_id):
        return x_request_id
    if traceparent:
        match = _TRACEPARENT.match(traceparent.strip().lower())
        if match:
            return match.group(1)
    return new_request_id()


def current_request_id() -> str:
    return request_id_var.get()
