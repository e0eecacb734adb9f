"""A gateway without a network: accepts every message at once.

For the benchmark, which measures the engine (claim, execute, record), not a network
stack. Mount it with ``GATEWAY_ADAPTERS = {"sms": "gateways.adapters.inprocess.
InProcessGateway", ...}``; ``GATEWAY_INPROCESS_LATENCY_S`` adds a simulated
per-call latency, still bounded by the attempt's timeout like a real call.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
from django.conf import settings

from ..base import GatewayMessage, GatewayResult, Outcome


class InProcessGateway:
    name = "inprocess"
    uses_http_client = False  # so the registry never builds an httpx client for it

    def __init__(self, *, client: httpx.AsyncClient | None = None, name: str | None = None) -> None:
        # ``client`` is accepted (and unused) so the registry builds every adapter alike.
        if name:
            self.name = name
        self.latency_s = float(getattr(settings, "GATEWAY_INPROCESS_LATENCY_S", 0) or 0)

    async def send(self, message: GatewayMessage, *, timeout_s: float) -> GatewayResult:
        if self.latency_s > 0:
            try:
                async with asyncio.timeout(timeout_s):
                    await asyncio.sleep(self.latency_s)
            except TimeoutError:
                return GatewayResult(Outcome.TIMEOUT, error=f"no answer within {timeout_s:g} s")
        return GatewayResult(Outcome.ACCEPTED, status_code=202, message_id=f"inproc-{uuid.uuid4()}")

    async def aclose(self) -> None:
        return None
