"""FCM HTTP v1 against documented requests and answers: the OAuth token exchange (a
JWT assertion signed with a service-account key made here) and the send."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateways.base import Outcome
from gateways.providers import provider_class
from gateways.providers.fcm import FcmProvider, clear_token_cache

from ..conftest import Recorder
from .conftest import DictSecrets, connection, run

TOKEN_URI = "https://oauth2.googleapis.com/token"
SEND_URL = "https://fcm.googleapis.com/v1/projects/myproject-b5ae1/messages:send"
ACCESS_TOKEN = "ya29.c.b0AXv0zTOTALLYFAKEtokenValue"
DEVICE = "bk3RNwTe3H0:CI2k_HHwgIpoDKCIZvvDMExUdFQ3P1"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def service_account(key) -> dict:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "myproject-b5ae1",
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": "portal@myproject-b5ae1.iam.gserviceaccount.com",
        "client_id": "113123456789012345678",
        "token_uri": TOKEN_URI,
    }


@pytest.fixture(autouse=True)
def _setup(allow_hosts) -> Iterator[None]:
    allow_hosts("oauth2.googleapis.com", "fcm.googleapis.com")
    clear_token_cache()
    yield
    clear_token_cache()


class Google:
    """Answers the token endpoint and FCM, each as configured."""

    def __init__(self, send: httpx.Response, token: httpx.Response | None = None) -> None:
        self.send = send
        self.token = token or httpx.Response(
            200, json={"access_token": ACCESS_TOKEN, "expires_in": 3599, "token_type": "Bearer"}
        )

    def __call__(
        self, request: httpx.Request
    ) -> httpx.Response | Coroutine[Any, Any, httpx.Response]:
        if str(request.url) == TOKEN_URI:
            return self._token()
        return self.send

    async def _token(self) -> httpx.Response:
        await asyncio.sleep(0)  # a real round trip yields: other sends run meanwhile
        return self.token


def provider(client, service_account, secrets=None) -> FcmProvider:
    return FcmProvider(
        config=connection(
            "fcm",
            "push",
            settings={"project_id": "myproject-b5ae1"},
            secrets={"service_account": "file:/run/secrets/fcm.json"},
        ),
        client=client,
        secrets=secrets or DictSecrets({"file:/run/secrets/fcm.json": json.dumps(service_account)}),
    )


SENT = httpx.Response(
    200, json={"name": "projects/myproject-b5ae1/messages/0:1500415314455276%31bd1c9631bd1c96"}
)


def test_registered() -> None:
    assert provider_class("fcm") is FcmProvider


def test_token_exchange_then_the_documented_send(service_account, key, make_message) -> None:
    recorder = Recorder(Google(SENT))
    message = make_message(
        {
            "token": DEVICE,
            "title": "Portugal vs. Denmark",
            "body": "great match!",
            "data": {"score": "5x1", "time": "15:10"},
            "badge": 3,
            "sound": "default",
            "ttl_s": 600,
        }
    )

    result = run(
        lambda c: provider(c, service_account).send(message, timeout_s=5), recorder.client()
    )

    assert result.outcome is Outcome.ACCEPTED, result.error
    assert (
        result.message_id == "projects/myproject-b5ae1/messages/0:1500415314455276%31bd1c9631bd1c96"
    )
    exchange, send = recorder.requests
    assert (exchange.method, str(exchange.url)) == ("POST", TOKEN_URI)
    form = {k: v[0] for k, v in parse_qs(exchange.content.decode()).items()}
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(
        form["assertion"], key.public_key(), algorithms=["RS256"], audience=TOKEN_URI
    )
    assert claims["iss"] == "portal@myproject-b5ae1.iam.gserviceaccount.com"
    assert claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
    assert jwt.get_unverified_header(form["assertion"])["kid"] == "0123456789abcdef"
    assert (send.method, str(send.url)) == ("POST", SEND_URL)
    assert send.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert json.loads(send.content) == {
        "message": {
            "token": DEVICE,
            "notification": {"title": "Portugal vs. Denmark", "body": "great match!"},
            "data": {"score": "5x1", "time": "15:10"},
            "android": {"ttl": "600s", "notification": {"sound": "default"}},
            "apns": {"payload": {"aps": {"sound": "default", "badge": 3}}},
        }
    }


def test_the_token_is_reused_across_sends(service_account, make_message) -> None:
    recorder = Recorder(Google(SENT))

    async def two_batches(client):
        for _ in range(2):  # two batches: two provider instances
            fcm = provider(client, service_account)
            await fcm.send(make_message({"token": DEVICE}), timeout_s=5)

    run(two_batches, recorder.client())
    assert [str(r.url) for r in recorder.requests] == [TOKEN_URI, SEND_URL, SEND_URL]


def fcm_error(http: int, status: str, message: str, code: str | None) -> httpx.Response:
    details = (
        [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}]
        if code
        else []
    )
    return httpx.Response(
        http,
        json={"error": {"code": http, "message": message, "status": status, "details": details}},
    )


@pytest.mark.parametrize(
    ("response", "outcome", "suppress", "code"),
    [
        (
            fcm_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED"),
            Outcome.REJECTED_PERMANENT,
            True,
            "UNREGISTERED",
        ),
        (
            fcm_error(
                400,
                "INVALID_ARGUMENT",
                "The registration token is not a valid FCM registration token",
                "INVALID_ARGUMENT",
            ),
            Outcome.REJECTED_PERMANENT,
            True,
            "INVALID_ARGUMENT",
        ),
        (
            fcm_error(
                400,
                "INVALID_ARGUMENT",
                "Invalid value at 'message.data[0].value' (TYPE_STRING), 1",
                "INVALID_ARGUMENT",
            ),
            Outcome.REJECTED_PERMANENT,
            False,
            "INVALID_ARGUMENT",
        ),
        (
            fcm_error(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH"),
            Outcome.REJECTED_TRANSIENT,
            False,
            "SENDER_ID_MISMATCH",
        ),
        (
            fcm_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded", "QUOTA_EXCEEDED"),
            Outcome.REJECTED_TRANSIENT,
            False,
            "QUOTA_EXCEEDED",
        ),
        (
            fcm_error(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE"),
            Outcome.REJECTED_TRANSIENT,
            False,
            "UNAVAILABLE",
        ),
        (
            fcm_error(500, "INTERNAL", "Internal error encountered.", "INTERNAL"),
            Outcome.REJECTED_TRANSIENT,
            False,
            "INTERNAL",
        ),
        (
            fcm_error(
                401,
                "THIRD_PARTY_AUTH_ERROR",
                "Auth error from APNS or Web Push Service",
                "THIRD_PARTY_AUTH_ERROR",
            ),
            Outcome.REJECTED_TRANSIENT,
            False,
            "THIRD_PARTY_AUTH_ERROR",
        ),
    ],
)
def test_documented_errors(
    service_account, make_message, response, outcome, suppress, code
) -> None:
    result = run(
        lambda c: provider(c, service_account).send(make_message({"token": DEVICE}), timeout_s=5),
        Recorder(Google(response)).client(),
    )
    assert (result.outcome, result.suppress_recipient, result.provider_code) == (
        outcome,
        suppress,
        code,
    )


def test_unauthenticated_drops_the_token_and_rereads_the_key(service_account, make_message) -> None:
    secrets = DictSecrets({"file:/run/secrets/fcm.json": json.dumps(service_account)})
    google = Google(
        fcm_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.", None)
    )
    recorder = Recorder(google)

    async def twice(client):
        first = await provider(client, service_account, secrets).send(
            make_message({"token": DEVICE}), timeout_s=5
        )
        google.send = SENT
        second = await provider(client, service_account, secrets).send(
            make_message({"token": DEVICE}), timeout_s=5
        )
        return first, second

    first, second = run(twice, recorder.client())
    assert (first.outcome, first.auth_failed) == (Outcome.REJECTED_TRANSIENT, True)
    assert ACCESS_TOKEN not in first.error
    assert secrets.invalidated
    assert second.outcome is Outcome.ACCEPTED
    assert [str(r.url) for r in recorder.requests] == [TOKEN_URI, SEND_URL, TOKEN_URI, SEND_URL]


def test_refused_assertion_is_an_auth_failure(service_account, make_message) -> None:
    refused = httpx.Response(
        400, json={"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
    )
    recorder = Recorder(Google(SENT, token=refused))
    result = run(
        lambda c: provider(c, service_account).send(make_message({"token": DEVICE}), timeout_s=5),
        recorder.client(),
    )
    assert (result.outcome, result.auth_failed, result.provider_code) == (
        Outcome.REJECTED_TRANSIENT,
        True,
        "invalid_grant",
    )
    assert len(recorder.requests) == 1  # nothing sent to FCM


def test_non_string_data_is_our_error(service_account, make_message) -> None:
    recorder = Recorder(Google(SENT))
    result = run(
        lambda c: provider(c, service_account).send(
            make_message({"token": DEVICE, "data": {"n": 1}}), timeout_s=5
        ),
        recorder.client(),
    )
    assert result.outcome is Outcome.EXECUTOR_ERROR
    assert recorder.requests == []


def test_token_uri_outside_the_allow_list(service_account, make_message) -> None:
    service_account["token_uri"] = "https://evil.example/token"
    recorder = Recorder(Google(SENT))
    result = run(
        lambda c: provider(c, service_account).send(make_message({"token": DEVICE}), timeout_s=5),
        recorder.client(),
    )
    assert result.outcome is Outcome.EXECUTOR_ERROR
    assert recorder.requests == []


def test_private_key_never_in_an_error(service_account, make_message) -> None:
    broken = dict(
        service_account,
        private_key="-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
    )
    result = run(
        lambda c: provider(c, broken).send(make_message({"token": DEVICE}), timeout_s=5),
        Recorder(Google(SENT)).client(),
    )
    assert result.outcome is Outcome.EXECUTOR_ERROR
    assert "not a key" not in result.error


def test_probe_is_the_token_exchange_alone(service_account) -> None:
    recorder = Recorder(Google(SENT))
    probe = run(lambda c: provider(c, service_account).probe(timeout_s=5), recorder.client())
    assert probe.ok
    assert [str(r.url) for r in recorder.requests] == [TOKEN_URI]


def test_a_concurrent_batch_exchanges_one_token(service_account, make_message) -> None:
    recorder = Recorder(Google(SENT))

    async def batch(client):
        fcm = provider(client, service_account)
        return await asyncio.gather(
            *(fcm.send(make_message({"token": f"{DEVICE}-{n}"}), timeout_s=5) for n in range(20))
        )

    results = run(batch, recorder.client())
    assert all(r.outcome is Outcome.ACCEPTED for r in results)
    urls = [str(r.url) for r in recorder.requests]
    assert urls.count(TOKEN_URI) == 1
    assert urls.count(SEND_URL) == 20
