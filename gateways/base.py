"""The gateway protocol: adapters take a message and a timeout and return a result.

Gateways know nothing about intents. The delivery engine turns a ``GatewayResult``
into an attempt row and the intent's next state.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Protocol


class Outcome(enum.StrEnum):
    """How one attempt ended. The values are the attempt outcomes of CONTRACT.md."""

    ACCEPTED = "accepted"
    REJECTED_PERMANENT = "rejected_permanent"
    REJECTED_TRANSIENT = "rejected_transient"
    TIMEOUT = "timeout"
    EXECUTOR_ERROR = "executor_error"


@dataclasses.dataclass(frozen=True, slots=True)
class GatewayMessage:
    idempotency_key: str  # the intent's public id: a retry can never deliver twice
    correlation_id: str  # sent as X-Request-ID
    payload: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class GatewayResult:
    outcome: Outcome
    status_code: int | None = None
    message_id: str = ""
    retry_after_s: float | None = None
    error: str = ""  # redacted, short: never the payload or a credential


class Gateway(Protocol):
    """One outbound channel. ``send`` never raises: every failure is a result."""

    name: str

    async def send(self, message: GatewayMessage, *, timeout_s: float) -> GatewayResult: ...

    async def aclose(self) -> None: ...
