"""The ``webhook_endpoint`` provider's address check, once per endpoint per batch: a
batch's deliveries share one DNS lookup, and every one of them goes to (or is refused
for) the address that lookup returned and the SSRF rule checked."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from gateways.base import Outcome
from gateways.providers.webhook import WebhookEndpointProvider

from ..conftest import Recorder
from .conftest import DictSecrets, connection

URL = "https://hooks.customer.example/in?tenant=7"
BATCH = 25


class Resolver:
    """Stands in for the event loop's ``getaddrinfo``: answers ``address``, counts asks."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int, **kwargs: object) -> list[tuple]:
        self.asked.append((host, port))
        await asyncio.sleep(0)  # a real lookup yields: the batch's other sends run meanwhile
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (self.address, port))]


@pytest.fixture
def resolver(monkeypatch, settings) -> Resolver:
    settings.WEBHOOK_ALLOWED_CIDRS = []
    resolving = Resolver(
        "93.184.215.14"
    )  # a public address (the documentation ranges count as private)
    monkeypatch.setattr(
        asyncio.BaseEventLoop, "getaddrinfo", lambda _loop, *a, **k: resolving(*a, **k)
    )
    return resolving


def endpoint_provider(client: httpx.AsyncClient) -> WebhookEndpointProvider:
    return WebhookEndpointProvider(
        config=connection(
            "webhook_endpoint",
            "http",
            key="webhook-endpoint:test",
            settings={"url": URL},
            secrets={"signing_secret": "sealed:x"},
        ),
        client=client,
        secrets=DictSecrets({"sealed:x": "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}),
    )


def send_batches(recorder: Recorder, make_message, batches: int) -> list:
    """``batches`` batches of ``BATCH`` concurrent sends, each batch its own provider (as a
    ``GatewaySession`` builds one per connection per batch)."""

    async def go() -> list:
        results = []
        async with recorder.client() as client:
            for _ in range(batches):
                provider = endpoint_provider(client)
                results += await asyncio.gather(
                    *(provider.send(make_message({"n": n}), timeout_s=5) for n in range(BATCH))
                )
        return results

    return asyncio.run(go())


def test_a_batch_to_one_endpoint_resolves_once_and_each_delivery_goes_to_that_address(
    resolver, make_message
):
    recorder = Recorder(httpx.Response(200, json={"id": "ok"}))

    results = send_batches(recorder, make_message, batches=1)

    assert resolver.asked == [("hooks.customer.example", 443)]
    assert [r.outcome for r in results] == [Outcome.ACCEPTED] * BATCH
    assert len(recorder.requests) == BATCH
    for request in recorder.requests:
        assert str(request.url) == "https://93.184.215.14/in?tenant=7"
        assert request.headers["Host"] == "hooks.customer.example"
        assert request.extensions["sni_hostname"] == "hooks.customer.example"


def test_the_next_batch_resolves_afresh(resolver, make_message):
    recorder = Recorder(httpx.Response(200, json={"id": "ok"}))

    send_batches(recorder, make_message, batches=3)

    assert len(resolver.asked) == 3
    assert len(recorder.requests) == 3 * BATCH


def test_a_refused_address_refuses_every_delivery_of_the_batch_without_a_request(
    resolver, make_message
):
    resolver.address = "10.1.2.3"
    recorder = Recorder(httpx.Response(200, json={"id": "ok"}))

    results = send_batches(recorder, make_message, batches=1)

    assert len(resolver.asked) == 1
    assert recorder.requests == []
    assert {r.outcome for r in results} == {Outcome.REJECTED_PERMANENT}
    assert all("private" in r.error for r in results)


def test_a_delivery_timing_out_does_not_cancel_the_lookup_the_others_await(resolver, make_message):
    recorder = Recorder(httpx.Response(200, json={"id": "ok"}))

    async def go() -> list:
        async with recorder.client() as client:
            provider = endpoint_provider(client)
            impatient = provider.send(make_message(), timeout_s=0)  # cancelled at once
            others = (provider.send(make_message(), timeout_s=5) for _ in range(3))
            return await asyncio.gather(impatient, *others)

    first, *rest = asyncio.run(go())

    assert first.outcome is Outcome.TIMEOUT
    assert [r.outcome for r in rest] == [Outcome.ACCEPTED] * 3
    assert len(resolver.asked) == 1
