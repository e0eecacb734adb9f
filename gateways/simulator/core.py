"""The simulator's rules, without a network: a thread-safe ``GatewaySimulator``.

It decides each message's fate from its recipient, like a provider's magic test
numbers (CONTRACT.md, "Gateway simulator"), honours idempotency keys as a real
provider would, keeps a list of every request so a test can count deliveries, and
answers status lookups by idempotency key (``GET /<gateway>/status/<key>``) so
reconciliation can settle an attempt that timed out.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import json
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

GATEWAY_PATHS = {"/sms": "to", "/push": "token", "/http": "to", "/email": "to"}  # -> recipient
MESSAGES_PATH = "/messages"
# A long-running `make run` simulator must not grow without bound.
DEFAULT_MAX_RECORDS = 100_000
_FAIL_FIRST_N = re.compile(r"0020([1-9])$")
# GET /sms/status/<key> (likewise /push, /http): the key percent-encoded as one segment.
_STATUS_PATH = re.compile(rf"^({'|'.join(map(re.escape, GATEWAY_PATHS))})/status/(.+)$")


@dataclasses.dataclass(frozen=True, slots=True)
class SimResponse:
    """What to answer. ``hold``: answer nothing until the client gives up."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    hold: bool = False

    def body_bytes(self) -> bytes:
        return json.dumps(self.body).encode() if self.body is not None else b""


def _error(status: int, message: str) -> SimResponse:
    return SimResponse(status, {"error": message})


class GatewaySimulator:
    """Decides responses and records requests; safe to call from many threads."""

    def __init__(
        self,
        *,
        max_records: int = DEFAULT_MAX_RECORDS,
        on_accepted: Callable[[str, str, str], None] | None = None,
    ) -> None:
        # Called as on_accepted(path, message_id, recipient) after each first acceptance,
        # outside the lock (the receipt sender schedules its signed receipt there).
        self.on_accepted = on_accepted
        self._lock = threading.Lock()
        self._records: collections.deque[dict[str, Any]] = collections.deque(maxlen=max_records)
        self._accepted: dict[str, str] = {}  # idempotency key -> message id
        self._seen: collections.Counter[str] = collections.Counter()  # requests per key

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> SimResponse:
        """Route one HTTP request: gateway POSTs, status GETs, GET/DELETE of the message list."""
        path = path.split("?", 1)[0]
        status_path = _STATUS_PATH.match(path)
        if status_path:
            if method != "GET":
                return _error(405, f"{method} not allowed on {status_path.group(1)}/status/")
            return self.status_response(unquote(status_path.group(2)))
        if path == MESSAGES_PATH:
            if method == "GET":
                return SimResponse(200, self.messages())
            if method == "DELETE":
                self.clear_messages()
                return SimResponse(200, {"deleted": True})
            return _error(405, f"{method} not allowed on {path}")
        if path in GATEWAY_PATHS:
            if method != "POST":
                return _error(405, f"{method} not allowed on {path}")
            return self.decide(path, headers, body)
        return _error(404, f"no endpoint {path}")

    def decide(self, path: str, headers: Mapping[str, str], body: bytes) -> SimResponse:
        """The answer to one gateway POST, recorded in the message list."""
        if path not in GATEWAY_PATHS:
            return _error(404, f"no endpoint {path}")
        lowered = {k.lower(): v for k, v in headers.items()}
        key = lowered.get("idempotency-key", "").strip()
        request_id = lowered.get("x-request-id", "")
        traceparent = lowered.get("traceparent", "")  # W3C: sent when tracing is on
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            data = None
        recipient = ""
        if isinstance(data, dict):
            value = data.get(GATEWAY_PATHS[path])
            if value is None and path == "/push":
                value = data.get("to")
            if isinstance(value, list) and path == "/email":  # email: the first address decides
                value = value[0] if value else None
            recipient = "" if value is None else str(value)
        with self._lock:
            if not isinstance(data, dict):
                response = _error(400, "body must be a JSON object")
            elif not key:
                response = _error(400, "Idempotency-Key header is required")
            else:
                # An address's local part carries the magic ending: bounce-00400@example.com.
                decided_by = recipient.split("@", 1)[0] if path == "/email" else recipient
                response = self._decide_locked(key, decided_by)
            self._records.append(
                {
                    "path": path,
                    "to": recipient,
                    "idempotency_key": key,
                    "request_id": request_id,
                    "traceparent": traceparent,
                    "status": response.status,
                    "message_id": (response.body or {}).get("message_id"),
                    "duplicate": bool((response.body or {}).get("duplicate", False)),
                    "received_at": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
                }
            )
        body_data = response.body if isinstance(response.body, dict) else {}
        if (
            self.on_accepted is not None
            and response.status == 202
            and not body_data.get("duplicate")
        ):
            self.on_accepted(path, str(body_data.get("message_id")), recipient)
        return response

    def _decide_locked(self, key: str, recipient: str) -> SimResponse:
        self._seen[key] += 1
        if key in self._accepted:  # a provider honouring idempotency: same answer, no resend
            return self._accepted_response(self._accepted[key], duplicate=True)
        if recipient.endswith("00400"):
            return _error(400, "recipient rejected")
        if recipient.endswith("00503"):
            return _error(503, "service unavailable")
        if recipient.endswith("00429"):
            return SimResponse(429, {"error": "rate limited"}, {"Retry-After": "1"})
        if recipient.endswith("00504"):
            # Recorded as 504 (what a proxy would eventually say); the client sees nothing.
            return SimResponse(504, hold=True)
        fail_first = _FAIL_FIRST_N.search(recipient)
        if fail_first and self._seen[key] <= int(fail_first.group(1)):
            return _error(503, f"temporarily unavailable (request {self._seen[key]})")
        message_id = f"sim-{uuid.uuid4().hex}"
        self._accepted[key] = message_id
        return self._accepted_response(message_id, duplicate=False)

    @staticmethod
    def _accepted_response(message_id: str, *, duplicate: bool) -> SimResponse:
        return SimResponse(
            202,
            {"message_id": message_id, "status": "accepted", "duplicate": duplicate},
            {"X-Message-ID": message_id},
        )

    def accepted_message_id(self, key: str) -> str | None:
        """The message id a request with ``key`` was accepted under, or None."""
        with self._lock:
            return self._accepted.get(key)

    def status_response(self, key: str) -> SimResponse:
        """The answer to a status lookup; not recorded in the message list.

        The three gateway paths share one key space, as their POSTs do: a key accepted
        on ``/sms`` is a duplicate on ``/push`` too.
        """
        message_id = self.accepted_message_id(key)
        if message_id is None:
            return SimResponse(404, {"status": "unknown"})
        body = {"idempotency_key": key, "status": "accepted", "message_id": message_id}
        return SimResponse(200, body, {"X-Message-ID": message_id})

    def messages(self) -> list[dict[str, Any]]:
        """Every recorded request, oldest first (copies)."""
        with self._lock:
            return [dict(record) for record in self._records]

    def clear_messages(self) -> None:
        """Empty the list. Accepted keys are remembered: a resend stays a duplicate."""
        with self._lock:
            self._records.clear()
