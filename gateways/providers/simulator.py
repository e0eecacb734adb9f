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
    ParsedReceipt,
    ProbeResult,
    ReceiptRejected,
    ReceiptRequest,
    SecretSource,
)
from ..receipts import json_body, standard_receipt, verify_standard_webhook

# The simulator's receipt code for a recipient that can never be reached (``…00410``).
SIMULATOR_PERMANENT_CODES = frozenset({"unreachable"})


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

    @property
    def can_query_status(self) -> bool:
        """Whether ``reconcile`` can ask this connection about an idempotency key: the
        channel adapter must offer the lookup (the HTTP ones when their status URL is set)."""
        query = getattr(self.adapter, "query_status", None)
        return callable(query) and bool(getattr(self.adapter, "can_query_status", True))

    async def query_status(
        self, idempotency_key: str, *, timeout_s: float, request_id: str = ""
    ) -> GatewayResult | None:
        """The channel adapter's lookup by idempotency key (None: no record of it)."""
        query = getattr(self.adapter, "query_status")  # noqa: B009 - optional on Gateway
        result: GatewayResult | None = await query(
            idempotency_key, timeout_s=timeout_s, request_id=request_id
        )
        return result

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

    # --- receipts (Standard Webhooks, signed with the connection's receipt_secret) --

    @classmethod
    def receipt_secret(cls, config: ConnectionConfig, secrets: SecretSource) -> str:
        """An explicit connection's ``[secrets] receipt_secret``; a built-in default
        connection's ``GATEWAY_SIMULATOR_RECEIPT_SECRET``; "" when neither is set."""
        reference = config.secrets.get("receipt_secret")
        if reference:
            return secrets.get(reference)
        if config.settings.get("builtin"):
            return str(settings.GATEWAY_SIMULATOR_RECEIPT_SECRET or "")
        return ""

    @classmethod
    def receipts_expected(cls, config: ConnectionConfig) -> bool:
        if config.secrets.get("receipt_secret"):
            return True
        return bool(config.settings.get("builtin") and settings.GATEWAY_SIMULATOR_RECEIPT_SECRET)

    @classmethod
    def parse_receipt(
        cls, config: ConnectionConfig, request: ReceiptRequest, secrets: SecretSource
    ) -> list[ParsedReceipt]:
        secret = cls.receipt_secret(config, secrets)
        if not secret:
            raise ReceiptRejected(f"connection {config.key!r} has no receipt_secret to verify with")
        verify_standard_webhook(secret, request)
        return [standard_receipt(json_body(request), permanent_codes=SIMULATOR_PERMANENT_CODES)]


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
            # "" says the gateway cannot be asked (GATEWAY_*_STATUS_URL=""); absent: the default
            status_url = config.settings.get("status_url")
            kwargs["status_url"] = f"{url}/status" if status_url is None else str(status_url)
    adapter: Gateway = adapter_class(**kwargs)
    return adapter
