"""The simulator provider and the default connections behave as the old adapters did."""

from __future__ import annotations

import asyncio

import pytest

from gateways.base import GatewayMessage, Outcome
from gateways.connections import DEFAULT_CONNECTIONS, connection_specs, default_connection
from gateways.providers import PROVIDERS, UnknownProvider, provider_class
from gateways.providers.simulator import SimulatorProvider
from gateways.registry import GatewaySession


def _send(config, payload, key="k-1"):
    async def go():
        async with GatewaySession() as session:
            provider = session.connection(config)
            again = session.connection(config)
            assert provider is again  # one provider per connection per session
            message = GatewayMessage(idempotency_key=key, correlation_id="c", payload=payload)
            return await provider.send(message, timeout_s=5)

    return asyncio.run(go())


def test_the_registry_lists_the_simulator() -> None:
    assert PROVIDERS["simulator"] == "gateways.providers.simulator.SimulatorProvider"
    assert provider_class("simulator") is SimulatorProvider
    with pytest.raises(UnknownProvider, match="unknown provider 'fax'"):
        provider_class("fax")


@pytest.mark.parametrize(
    ("channel", "payload", "recipient"),
    [
        ("sms", {"to": "+15550100001", "text": "hi"}, "+15550100001"),
        ("push", {"token": "device-1"}, "device-1"),
        ("http", {"to": "hook-1", "event": "e"}, "hook-1"),
        ("email", {"to": ["ann@example.com"], "subject": "s", "text": "t"}, "ann@example.com"),
    ],
)
def test_each_default_connection_posts_to_its_simulator_path(
    simulator_settings,
    simulator,
    channel,
    payload,
    recipient,
) -> None:
    config = default_connection(channel).config
    assert config.key == DEFAULT_CONNECTIONS[channel]
    result = _send(config, payload)
    assert result.outcome is Outcome.ACCEPTED, result
    [record] = simulator.simulator.messages()
    assert record["path"] == f"/{channel}" and record["to"] == recipient


def test_the_simulator_email_path_keeps_the_magic_numbers(simulator_settings) -> None:
    config = default_connection("email").config
    result = _send(config, {"to": "bounce-00400@example.com", "text": "t"})
    assert result.outcome is Outcome.REJECTED_PERMANENT
    # The recipient rule reads the local part's end, like the phone numbers'.
    result = _send(config, {"to": "x00503", "text": "t"}, key="k-2")
    assert result.outcome is Outcome.REJECTED_TRANSIENT


def test_an_email_without_a_body_is_our_fault(simulator_settings) -> None:
    result = _send(default_connection("email").config, {"to": "a@example.com"})
    assert result.outcome is Outcome.EXECUTOR_ERROR
    assert "neither 'text' nor 'html'" in result.error


def test_a_probe_reaches_the_simulator(simulator_settings) -> None:
    async def go():
        async with GatewaySession() as session:
            return await session.connection(default_connection("sms").config).probe(timeout_s=5)

    assert asyncio.run(go()).ok


@pytest.mark.django_db
def test_a_file_connection_overrides_a_default_of_the_same_key(folders) -> None:
    folders.connection(
        "override",
        """
        key = "simulator-sms"
        provider = "simulator"
        channel = "sms"
        [settings]
        url = "http://127.0.0.1:9/elsewhere"
        """,
    )
    folders.sync()
    spec = connection_specs(["simulator-sms", "simulator-push"])
    assert spec["simulator-sms"].config.settings["url"] == "http://127.0.0.1:9/elsewhere"
    assert spec["simulator-push"].config.provider == "simulator"
