"""Which adapter serves which gateway name, and the HTTP client they share.

The engine opens one ``GatewaySession`` per batch inside ``asyncio.run``::

    async with GatewaySession() as session:
        result = await session.connection(config).send(message, timeout_s=5)

``connection(config)`` builds the provider a connection names
(``gateways.providers.PROVIDERS``) as ``ProviderClass(config=config, client=<the shared
client>, secrets=<the process's SecretResolver>)``, once per connection per session.
``get(name)`` still serves the channel adapters of ``GATEWAY_ADAPTERS`` directly
(reconciliation's status lookups use it).

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
from .base import ConnectionConfig, Gateway, Provider, SecretSource
from .providers import provider_class

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
        secrets: SecretSource | None = None,
    ) -> None:
        self._adapter_paths = dict(settings.GATEWAY_ADAPTERS if adapters is None else adapters)
        self._max_connections = max_connections
        self._open = False
        self._client: httpx.AsyncClient | None = None
        self._gateways: dict[str, Gateway] = {}
        self._providers: dict[str, tuple[ConnectionConfig, Provider]] = {}
        from .secrets import resolver

        self.secrets: SecretSource = resolver if secrets is None else secrets

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
        providers, self._providers = [p for _, p in self._providers.values()], {}
        try:
            for closable in [*providers, *gateways]:
                await closable.aclose()
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
        adapter: Gateway = adapter_class(client=self.client if needs_client else None, name=name)
        self._gateways[name] = adapter
        return adapter

    def connection(self, config: ConnectionConfig) -> Provider:
        """The provider serving connection ``config``, built on first use in this session.

        Raises ``UnknownProvider`` for a provider key nobody registered. A provider class
        may say it needs no network for this config (``needs_http_client(config)``
        returning False), so no client is built for it.
        """
        self._require_open()
        cached = self._providers.get(config.key)
        if cached is not None and cached[0] == config:
            return cached[1]
        provider_type = provider_class(config.provider)
        needs_client = getattr(provider_type, "needs_http_client", None)
        client = self.client if needs_client is None or needs_client(config) else None
        provider: Provider = provider_type(config=config, client=client, secrets=self.secrets)
        self._providers[config.key] = (config, provider)
        return provider
