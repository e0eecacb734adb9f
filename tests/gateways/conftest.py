"""Fixtures for the gateway tests: a real simulator on a free port, settings aimed at it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeAlias, cast

import httpx
import pytest

from gateways.base import GatewayMessage
from gateways.simulator import SimulatorServer, start_simulator_in_thread


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    server, _ = start_simulator_in_thread()
    yield server
    server.stop()


@pytest.fixture
def simulator_settings(settings, simulator: SimulatorServer):
    """Every gateway URL pointed at the test simulator."""
    settings.GATEWAY_SMS_URL = f"{simulator.base_url}/sms"
    settings.GATEWAY_PUSH_URL = f"{simulator.base_url}/push"
    settings.GATEWAY_HTTP_URL = f"{simulator.base_url}/http"
    settings.GATEWAY_EMAIL_URL = f"{simulator.base_url}/email"
    for gateway in ("sms", "push", "http", "email"):
        setattr(
            settings,
            f"GATEWAY_{gateway.upper()}_STATUS_URL",
            f"{simulator.base_url}/{gateway}/status",
        )
    settings.GATEWAY_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    return settings


@pytest.fixture
def make_message() -> Callable[..., GatewayMessage]:
    counter = iter(range(1, 1_000_000))

    def make(payload: dict | None = None, *, key: str | None = None) -> GatewayMessage:
        n = next(counter)
        return GatewayMessage(
            idempotency_key=key or f"intent-{n}",
            correlation_id=f"corr-{n}",
            payload=payload if payload is not None else {"to": "+15550100001", "text": "hi"},
        )

    return make


# A handler answers at once or, like an ``async def``, with a coroutine MockTransport awaits.
Answer: TypeAlias = httpx.Response | Coroutine[Any, Any, httpx.Response]


class Recorder:
    """An httpx.MockTransport handler that records requests and answers as told."""

    def __init__(self, response: httpx.Response | Callable[[httpx.Request], Answer]):
        self.response = response
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> Answer:
        self.requests.append(request)
        if callable(self.response):
            return self.response(request)
        return self.response

    def client(self) -> httpx.AsyncClient:
        # MockTransport awaits any answer that is not a Response, but its annotation wants a
        # handler that is all sync or all async; this one is either, per answer.
        return httpx.AsyncClient(transport=httpx.MockTransport(cast(Any, self)))
