"""A provider for engine tests whose behaviour is set per connection, answered at once.

``settings.mode`` (or ``modes[key]``, switchable during a test): ``up`` accepts, ``down``
answers 503, ``timeout`` times out, ``bounce`` is a permanent rejection that suppresses
the recipient, ``leaky`` echoes its secret into the error (a badly written provider).
"""

from __future__ import annotations

import threading
import uuid

from gateways.base import ConnectionConfig, GatewayMessage, GatewayResult, Outcome, ProbeResult

calls: list[tuple[str, str]] = []  # (connection key, idempotency key), in call order
modes: dict[str, str] = {}
_lock = threading.Lock()


def reset() -> None:
    with _lock:
        calls.clear()
        modes.clear()


def calls_to(key: str) -> int:
    with _lock:
        return sum(1 for connection, _ in calls if connection == key)


class ScriptedProvider:
    name = "scripted"

    def __init__(self, *, config: ConnectionConfig, client: object, secrets: object) -> None:
        self.config = config
        self.secrets = secrets

    @staticmethod
    def needs_http_client(config: ConnectionConfig) -> bool:
        return False

    @classmethod
    def receipts_expected(cls, config: ConnectionConfig) -> bool:
        return bool(config.settings.get("receipts"))

    async def send(self, message: GatewayMessage, *, timeout_s: float) -> GatewayResult:
        with _lock:
            calls.append((self.config.key, message.idempotency_key))
            mode = modes.get(self.config.key, self.config.settings.get("mode", "up"))
        if mode == "down":
            return GatewayResult(Outcome.REJECTED_TRANSIENT, 503, error="HTTP 503")
        if mode == "timeout":
            return GatewayResult(Outcome.TIMEOUT, error=f"no answer within {timeout_s:g} s")
        if mode == "bounce":
            return GatewayResult(
                Outcome.REJECTED_PERMANENT,
                400,
                error="HTTP 400: unreachable",
                suppress_recipient=True,
                provider_code="21610",
            )
        if mode == "leaky":
            token = self.secrets.get(self.config.secrets["token"])  # type: ignore[attr-defined]
            return GatewayResult(
                Outcome.REJECTED_TRANSIENT,
                401,
                error=f"HTTP 401: token {token} refused",
                auth_failed=True,
            )
        return GatewayResult(Outcome.ACCEPTED, 202, message_id=f"msg-{uuid.uuid4().hex[:12]}")

    async def probe(self, *, timeout_s: float) -> ProbeResult:
        mode = modes.get(self.config.key, self.config.settings.get("mode", "up"))
        return ProbeResult(mode == "up", f"mode {mode}")

    async def aclose(self) -> None:
        return None
