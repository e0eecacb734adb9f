from __future__ import annotations

import asyncio

from gateways.adapters.inprocess import InProcessGateway
from gateways.base import Outcome
from gateways.registry import GatewaySession


def test_accepts_at_once_with_unique_message_ids(settings, make_message) -> None:
    settings.GATEWAY_ADAPTERS = {"sms": "gateways.adapters.inprocess.InProcessGateway"}

    async def scenario():
        async with GatewaySession() as session:
            gateway = session.get("sms")
            return gateway, await asyncio.gather(
                *(gateway.send(make_message(), timeout_s=1) for _ in range(50))
            )

    gateway, results = asyncio.run(scenario())
    assert gateway.name == "sms"
    assert {r.outcome for r in results} == {Outcome.ACCEPTED}
    assert {r.status_code for r in results} == {202}
    assert len({r.message_id for r in results}) == 50


def test_latency_is_bounded_by_the_attempt_timeout(settings, make_message) -> None:
    settings.GATEWAY_INPROCESS_LATENCY_S = 30

    async def scenario():
        return await InProcessGateway().send(make_message(), timeout_s=0.05)

    result = asyncio.run(scenario())
    assert result.outcome is Outcome.TIMEOUT


def test_latency_within_the_timeout_is_accepted(settings, make_message) -> None:
    settings.GATEWAY_INPROCESS_LATENCY_S = 0.01

    result = asyncio.run(InProcessGateway().send(make_message(), timeout_s=5))
    assert result.outcome is Outcome.ACCEPTED
