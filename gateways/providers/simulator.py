"""The ``simulator`` provider: today's channel adapters behind the provider protocol.

Each channel's adapter is the one ``GATEWAY_ADAPTERS`` names (so the benchmark and the
engine tests can still swap in an in-process gateway), pointed at the connection's
``url``. The default connections ``simulator-sms``/``-push``/``-http``/``-email`` are
built from ``GATEWAY_*_URL`` (``gateways.connections.default_connection``), so a target
that names no connection behaves exactly as before connections existed.
"""

from __future__ import annotations

from typing import Any

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ..adapters.base_http import HttpGatewayBase
from ..base import (
    ConnectionConfig,
    Gateway,
    GatewayMessage,
    GatewayResult,
    ProbeResult,
    SecretSource,
)


class SimulatorProvider:
    name = "simulator"

    def __init__(
        self,
        *,
        config: ConnectionConfig,
        client: httpx.AsyncClient | None,
        secrets: SecretSource,
    ) -> None:
        self.config = config
        self.adapter = _adapter_for(config, client)

    @staticmethod
    def needs_http_client(config: ConnectionConfig) -> bool:
        """An in-process adapter (the benchmark's) needs no client: none is built."""
        path = settings.GATEWAY_ADAPTERS.get(config.channel)
        return path is None or bool(getattr(import_string(path), "uses_http_client", True))

    async def send(self, message: GatewayMessage, *, timeout_s: float) -> GatewayResult:
        return await self.adapter.send(message, timeout_s=timeout_s)

    async def probe(self, *, timeout_s: float) -> ProbeResult:
        """The simulator needs no credentials: a status lookup of a key it never saw
        proves it answers (404 is the expected answer)."""
        query = getattr(self.adapter, "query_status", None)
        if query is None or not getattr(self.adapter, "can_query_status", False):
            return ProbeResult(True, "in-process adapter: nothing to reach")
        result = await query("check-connections-probe", timeout_s=timeout_s)
        if result is None or (result.status_code is not None and result.status_code < 500):
            return ProbeResult(True, f"simulator answers at {self.config.settings.get('url')}")
        return ProbeResult(False, result.error or f"HTTP {result.status_code}")

    async def aclose(self) -> None:
        await self.adapter.aclose()


def _adapter_for(config: ConnectionConfig, client: httpx.AsyncClient | None) -> Gateway:
    path = settings.GATEWAY_ADAPTERS.get(config.channel)
    if path is None:
        raise ImproperlyConfigured(f"no adapter in GATEWAY_ADAPTERS for channel {config.channel!r}")
    adapter_class = import_string(path)
    kwargs: dict[str, Any] = {"name": config.channel}
    if getattr(adapter_class, "uses_http_client", True):
        kwargs["client"] = client
    if isinstance(adapter_class, type) and issubclass(adapter_class, HttpGatewayBase):
        url = config.settings.get("url")
        if url:
            kwargs["url"] = str(url)
            kwargs["status_url"] = str(config.settings.get("status_url") or f"{url}/status")
    adapter: Gateway = adapter_class(**kwargs)
    return adapter
