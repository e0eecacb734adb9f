from __future__ import annotations

import asyncio

import httpx
import pytest

from gateways.adapters.http import HttpGateway
from gateways.adapters.sms import SmsGateway
from gateways.allowlist import GatewayHostNotAllowed, check_url_allowed
from gateways.base import Outcome

from .conftest import Recorder


@pytest.fixture(autouse=True)
def _allowed(settings) -> None:
    settings.GATEWAY_ALLOWED_HOSTS = ["127.0.0.1", "Gateway.Example.com"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8025/sms",
        "https://gateway.example.com/v1/messages",
        "HTTPS://GATEWAY.EXAMPLE.COM:8443/x",
    ],
)
def test_allowed_urls_pass(url: str) -> None:
    check_url_allowed(url)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://evil.example/sms", "host evil.example not in GATEWAY_ALLOWED_HOSTS"),
        ("https://api.gateway.example.com/", "host api.gateway.example.com not in"),
        ("https://gateway.example.com.evil.example/", "not in GATEWAY_ALLOWED_HOSTS"),
        ("https://user@evil.example/", "host evil.example not in"),
        ("ftp://127.0.0.1/sms", "scheme 'ftp' not allowed"),
        ("127.0.0.1:8025/sms", "not allowed"),
        ("http:///sms", "no host"),
        ("http://[::1/sms", "malformed"),
    ],
)
def test_refused_urls(url: str, reason: str) -> None:
    with pytest.raises(GatewayHostNotAllowed, match=reason.replace(".", r"\.")):
        check_url_allowed(url)


def test_refused_host_makes_no_request(settings, make_message) -> None:
    settings.GATEWAY_SMS_URL = "https://evil.example/sms"
    recorder = Recorder(httpx.Response(202, json={"message_id": "m"}))

    async def scenario():
        async with recorder.client() as client:
            return await SmsGateway(client=client).send(make_message(), timeout_s=1)

    result = asyncio.run(scenario())
    assert result.outcome is Outcome.EXECUTOR_ERROR
    assert result.error == "host evil.example not in GATEWAY_ALLOWED_HOSTS"
    assert result.status_code is None
    assert recorder.requests == []


def test_allow_list_is_read_at_send_time(settings, make_message) -> None:
    recorder = Recorder(httpx.Response(202, json={"id": "m-1"}))

    async def scenario():
        async with recorder.client() as client:
            gateway = HttpGateway(client=client, url="http://127.0.0.1:1/hook")
            first = await gateway.send(make_message(), timeout_s=1)
            settings.GATEWAY_ALLOWED_HOSTS = ["localhost"]
            second = await gateway.send(make_message(), timeout_s=1)
            return first, second

    first, second = asyncio.run(scenario())
    assert first.outcome is Outcome.ACCEPTED
    assert second.outcome is Outcome.EXECUTOR_ERROR
    assert len(recorder.requests) == 1
