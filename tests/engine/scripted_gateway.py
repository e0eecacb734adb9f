"""An in-process gateway for engine tests: the simulator's magic numbers, answered at once.

``00504`` answers as a timeout would, without waiting for one, so tests control time.
"""

from __future__ import annotations

import collections
import threading
import uuid

from gateways.base import GatewayMessage, GatewayResult, Outcome

calls: list[GatewayMessage] = []
timeouts: list[float] = []  # the timeout_s of each call, in call order
_requests_per_key: collections.Counter[str] = collections.Counter()
_lock = threading.Lock()


def reset() -> None:
    with _lock:
        calls.clear()
        timeouts.clear()
        _requests_per_key.clear()


class ScriptedGateway:
    name = "scripted"

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    async def send(self, message: GatewayMessage, *, timeout_s: float) -> GatewayResult:
        recipient = str(message.payload.get("to") or message.payload.get("token") or "")
        with _lock:
            calls.append(message)
            timeouts.append(timeout_s)
            _requests_per_key[message.idempotency_key] += 1
            seen = _requests_per_key[message.idempotency_key]
        if recipient.endswith("00400"):
            return GatewayResult(Outcome.REJECTED_PERMANENT, 400, error="HTTP 400")
        if recipient.endswith("00503"):
            return GatewayResult(Outcome.REJECTED_TRANSIENT, 503, error="HTTP 503")
        if recipient.endswith("00429"):
            return GatewayResult(
                Outcome.REJECTED_TRANSIENT, 429, retry_after_s=30, error="HTTP 429"
            )
        if recipient.endswith("03600"):  # asks for an hour: beyond any policy's cap
            return GatewayResult(
                Outcome.REJECTED_TRANSIENT, 429, retry_after_s=3600, error="HTTP 429"
            )
        if recipient.endswith("00504"):
            return GatewayResult(Outcome.TIMEOUT, error=f"no answer within {timeout_s:g} s")
        if recipient.endswith("00666"):
            raise RuntimeError("adapter bug")  # the engine must turn this into executor_error
        if recipient[-5:-1] == "0020" and recipient[-1].isdigit() and seen <= int(recipient[-1]):
            return GatewayResult(Outcome.REJECTED_TRANSIENT, 503, error="HTTP 503")
        return GatewayResult(Outcome.ACCEPTED, 202, message_id=f"msg-{uuid.uuid4().hex[:12]}")

    async def aclose(self) -> None:
        pass
