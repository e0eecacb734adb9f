"""Shared by the provider tests: a dict-backed secret source and a way to run one call."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from gateways.base import ConnectionConfig

T = TypeVar("T")


class DictSecrets:
    """A ``SecretSource`` over a dict of reference -> value, recording what was asked."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = dict(values)
        self.reads: list[str] = []
        self.invalidated: list[str] = []

    def get(self, reference: str) -> str:
        self.reads.append(reference)
        try:
            return self.values[reference]
        except KeyError:
            raise LookupError(f"secret reference {reference} cannot be resolved") from None

    def invalidate(self, reference: str) -> None:
        self.invalidated.append(reference)


def connection(
    provider: str,
    channel: str,
    *,
    settings: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
    key: str | None = None,
) -> ConnectionConfig:
    return ConnectionConfig(
        key=key or f"{provider}-test",
        provider=provider,
        channel=channel,
        settings=settings or {},
        secrets=secrets or {},
    )


def run(factory: Callable[[httpx.AsyncClient], Awaitable[T]], client: httpx.AsyncClient) -> T:
    """Run one provider call on a fresh event loop, closing the client afterwards."""

    async def scenario() -> T:
        async with client:
            return await factory(client)

    return asyncio.run(scenario())


@pytest.fixture
def allow_hosts(settings):
    def allow(*hosts: str) -> None:
        settings.GATEWAY_ALLOWED_HOSTS = list(hosts)

    return allow
