"""Which adapter serves which gateway name, and the HTTP client they share.

The engine opens one ``GatewaySession`` per batch inside ``asyncio.run``::

    async with GatewaySession() as session:
        result = await session.get("sms").send(message, timeout_s=5)

Adapters in one session share one pooled ``httpx.AsyncClient`` (an httpx client is
bound to the event loop it first ran on, so it cannot outlive the batch's loop). It is
built when the first adapter that needs it is, not when the session opens: building one
(its SSL context above all) costs tens of milliseconds, which a batch served only by
adapters without a network (``uses_http_client = False``) should not pay.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .adapters.base_http import new_http_client
from .base import Gateway

# A batch sends up to ~100 messages at once; leave headroom so none waits for a socket.
DEFAULT_MAX_CONNECTIONS = 200


class UnknownGateway(LookupError):
    """No adapter is configured under this gateway name."""


class GatewaySession:
    """Builds adapters from ``GATEWAY_ADAPTERS`` on first use and closes them on exit."""

    def __init__(
        self,
        *,
        adapters: Mapping[str, str] | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self._adapter_paths = dict(settings.GATEWAY_ADAPTERS if adapters is None else adapters)
        self._max_connections = max_connections
        self._open = False
        self._client: httpx.AsyncClient | None = None
        self._gateways: dict[str, Gateway] = {}

    async def __aenter__(self) -> GatewaySession:
        self._open = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._open = False
        client, self._client = self._client, None
        gateways, self._gateways = list(self._gateways.values()), {}
        try:
            for gateway in gateways:
                await gateway.aclose()
        finally:
            if client is not None:
                await client.aclose()

    def _require_open(self) -> None:
        if not self._open:
            raise RuntimeError("GatewaySession is not open: use 'async with GatewaySession()'")

    @property
    def client(self) -> httpx.AsyncClient:
        """The shared client, built on first use; only while the session is open."""
        self._require_open()
        if self._client is None:
            self._client = new_http_client(max_connections=self._max_connections)
        return self._client

    def get(self, name: str) -> Gateway:
        """The adapter for gateway ``name``; raises ``UnknownGateway`` if none is configured."""
        self._require_open()
        gateway = self._gateways.get(name)
        if gateway is not None:
            return gateway
        path = self._adapter_paths.get(name)
        if path is None:
            known = ", ".join(sorted(self._adapter_paths)) or "none"
            raise UnknownGateway(f"no gateway {name!r} in GATEWAY_ADAPTERS (configured: {known})")
        try:
            adapter_class = import_string(path)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"GATEWAY_ADAPTERS[{name!r}] = {path!r} cannot be imported: {exc}"
            ) from exc
        # An adapter says it needs no network with ``uses_http_client = False``.
        needs_client = getattr(adapter_class, "uses_http_client", True)
        gateway = adapter_class(client=self.client if needs_client else None, name=name)
        self._gateways[name] = gateway
        return gateway
