"""The simulator's delivery receipts: a signed POST to the portal after each acceptance.

``--receipts-url URL --receipts-secret whsec_… [--receipt-delay-ms 200]``: every first
acceptance is followed, after the delay, by a Standard Webhooks-signed receipt
``{"message_id", "status", "error_code"?, "occurred_at"}`` to ``URL`` (``{connection}``
in it becomes the built-in connection of the path: ``simulator-sms`` for ``/sms``).
The status is ``delivered``, or ``undelivered`` with code ``unreachable`` (permanent)
for a recipient ending ``00410``.

The receipt may arrive before the engine has recorded the acceptance (the engine writes
a batch's outcomes after its slowest call): the portal then answers that it ignored an
unknown id, and the sender tries again after the delay, a few times.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import threading
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

from ..providers.webhook import sign

logger = logging.getLogger("gateways.simulator")

UNREACHABLE_SUFFIX = "00410"
MAX_TRIES = 5
_CONNECTIONS = {"/sms": "simulator-sms", "/push": "simulator-push", "/http": "simulator-http"}
_CONNECTIONS["/email"] = "simulator-email"


@dataclasses.dataclass(frozen=True, slots=True)
class SignedReceipt:
    url: str
    headers: dict[str, str]
    body: bytes


def receipt_body(message_id: str, recipient: str, occurred_at: dt.datetime) -> dict[str, str]:
    """What the simulator reports for one accepted message."""
    when = occurred_at.astimezone(dt.UTC).isoformat(timespec="milliseconds")
    body = {"message_id": message_id, "occurred_at": when.replace("+00:00", "Z")}
    local = recipient.split("@", 1)[0]
    if local.endswith(UNREACHABLE_SUFFIX):
        return {**body, "status": "undelivered", "error_code": "unreachable"}
    return {**body, "status": "delivered"}


# (url, headers, body) -> the hook's JSON answer; the real one posts over HTTP.
Post = Callable[[str, dict[str, str], bytes], dict[str, Any]]
# (delay_s, callable) -> None; the real one starts a timer thread.
Schedule = Callable[[float, Callable[[], None]], None]


def _http_post(url: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (our own URL)
        data = json.loads(response.read() or b"{}")
    return data if isinstance(data, dict) else {}


def _timer(delay_s: float, action: Callable[[], None]) -> None:
    timer = threading.Timer(delay_s, action)
    timer.daemon = True
    timer.start()


class ReceiptSender:
    """Schedules, signs and posts receipts; ``post``, ``schedule`` and ``now`` are
    injectable so a test drives it without a network or a sleep."""

    def __init__(
        self,
        *,
        url: str,
        secret: str,
        delay_s: float = 0.2,
        post: Post = _http_post,
        schedule: Schedule = _timer,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        sign(secret, "check", 0, b"")  # a secret that is not whsec_<base64> fails here
        self.url, self.secret, self.delay_s = url, secret, delay_s
        self._post, self._schedule, self._now = post, schedule, now

    def on_accepted(self, path: str, message_id: str, recipient: str) -> None:
        """``GatewaySimulator.on_accepted``: the receipt goes out after the delay."""
        occurred_at = self._now()
        self._schedule(self.delay_s, lambda: self.send(path, message_id, recipient, occurred_at))

    def signed(
        self, path: str, message_id: str, recipient: str, occurred_at: dt.datetime
    ) -> SignedReceipt:
        body = json.dumps(receipt_body(message_id, recipient, occurred_at)).encode()
        webhook_id = f"msg_{uuid.uuid4().hex}"
        timestamp = int(self._now().timestamp())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self.secret, webhook_id, timestamp, body),
        }
        url = self.url.replace("{connection}", _CONNECTIONS.get(path, "simulator-sms"))
        return SignedReceipt(url, headers, body)

    def send(
        self, path: str, message_id: str, recipient: str, occurred_at: dt.datetime, tries: int = 1
    ) -> None:
        """Post one receipt now; again after the delay while the portal does not know
        the message yet (up to ``MAX_TRIES``)."""
        receipt = self.signed(path, message_id, recipient, occurred_at)
        try:
            answer = self._post(receipt.url, receipt.headers, receipt.body)
        except Exception as exc:  # the portal is down or refused: nothing to retry into
            logger.warning("receipt for %s not delivered: %s", message_id, exc)
            return
        if answer.get("ignored") and tries < MAX_TRIES:
            self._schedule(
                self.delay_s,
                lambda: self.send(path, message_id, recipient, occurred_at, tries + 1),
            )
