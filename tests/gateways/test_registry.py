from __future__ import annotations

import asyncio

import pytest
from django.core.exceptions import ImproperlyConfigured

from gateways.adapters.http import HttpGateway
from gateways.adapters.push import PushGateway
from gateways.adapters.sms import SmsGateway
from gateways.base import Outcome
from gateways.registry import GatewaySession, UnknownGateway


def test_session_builds_configured_adapters_on_one_shared_client() -> None:
    async def scenario():
        async with GatewaySession() as session:
            gateways = [session.get(name) for name in ("sms", "push", "http")]
            again = session.get("sms")
            client = session.client
            assert not client.is_closed
            assert client.trust_env is False
        return gateways, again, client

    (sms, push, http), again, client = asyncio.run(scenario())
    assert (type(sms), type(push), type(http)) == (SmsGateway, PushGateway, HttpGateway)
    assert again is sms
    assert sms._client is push._client is http._client is client
    assert client.is_closed


def test_unknown_gateway_name_is_a_clear_error() -> None:
    async def scenario():
        async with GatewaySession() as session:
            session.get("fax")

    with pytest.raises(UnknownGateway, match=r"no gateway 'fax' in GATEWAY_ADAPTERS .*sms"):
        asyncio.run(scenario())


def test_unimportable_adapter_path_is_a_configuration_error(settings) -> None:
    settings.GATEWAY_ADAPTERS = {"sms": "gateways.adapters.nowhere.Gone"}

    async def scenario():
        async with GatewaySession() as session:
            session.get("sms")

    with pytest.raises(ImproperlyConfigured, match=r"GATEWAY_ADAPTERS\['sms'\]"):
        asyncio.run(scenario())


def test_get_outside_an_open_session_is_refused() -> None:
    with pytest.raises(RuntimeError, match="not open"):
        GatewaySession().get("sms")


def test_a_batch_of_concurrent_sends_through_one_session(
    simulator_settings, simulator, make_message
) -> None:
    messages = [make_message({"to": f"+1555010{n:04d}", "text": "x"}) for n in range(100)]

    async def scenario():
        async with GatewaySession() as session:
            return await asyncio.gather(
                *(session.get("sms").send(m, timeout_s=10) for m in messages)
            )

    results = asyncio.run(scenario())
    assert {r.outcome for r in results} == {Outcome.ACCEPTED}
    records = simulator.simulator.messages()
    assert sorted(r["idempotency_key"] for r in records) == sorted(
        m.idempotency_key for m in messages
    )
    assert {r["message_id"] for r in records} == {r.message_id for r in results}
