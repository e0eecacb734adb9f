"""Adapters over real sockets: the hard timeout and an unreachable gateway."""

from __future__ import annotations

import asyncio
import socket
import time

from gateways.adapters.sms import SmsGateway
from gateways.base import Outcome
from gateways.registry import GatewaySession


def test_hard_timeout_against_the_simulators_silent_number(
    simulator_settings, simulator, make_message
) -> None:
    message = make_message({"to": "+15550100504", "text": "never answered"})

    async def scenario():
        async with GatewaySession() as session:
            started = time.monotonic()
            result = await session.get("sms").send(message, timeout_s=0.2)
            return result, time.monotonic() - started

    result, elapsed = asyncio.run(scenario())

    assert result.outcome is Outcome.TIMEOUT
    assert result.status_code is None
    assert 0.2 <= elapsed < 2.0
    # Our side closed the connection, so the simulator lets the held request go.
    assert simulator.wait_for_held(0, timeout=5)
    (record,) = simulator.simulator.messages()
    assert record["idempotency_key"] == message.idempotency_key
    assert record["status"] == 504


def test_a_held_request_does_not_block_others(simulator_settings, simulator, make_message) -> None:
    held = make_message({"to": "+15550100504", "text": "held"})
    normal = make_message({"to": "+15550100001", "text": "normal"})

    async def scenario():
        async with GatewaySession() as session:
            gateway = session.get("sms")
            held_task = asyncio.create_task(gateway.send(held, timeout_s=30))
            assert await asyncio.to_thread(simulator.wait_for_held, 1, 5)
            result = await gateway.send(normal, timeout_s=5)
            held_task.cancel()
            return result

    result = asyncio.run(scenario())
    assert result.outcome is Outcome.ACCEPTED
    assert simulator.wait_for_held(0, timeout=5)


def test_connection_refused_is_transient(settings, make_message) -> None:
    # A bound socket that never listens: connecting to it is refused, and no other
    # process can take the port meanwhile.
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
        settings.GATEWAY_ALLOWED_HOSTS = ["127.0.0.1"]

        async def scenario():
            gateway = SmsGateway(url=f"http://127.0.0.1:{port}/sms")
            try:
                return await gateway.send(make_message(), timeout_s=5)
            finally:
                await gateway.aclose()

        result = asyncio.run(scenario())

    assert result.outcome is Outcome.REJECTED_TRANSIENT
    assert result.error.startswith("ConnectError")
