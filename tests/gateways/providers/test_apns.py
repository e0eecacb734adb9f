"""APNs: the documented request and error reasons (httpx.MockTransport), and the same
request over real HTTP/2 to a local h2 server."""

from __future__ import annotations

import asyncio
import json
import ssl
import uuid
from collections.abc import Iterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateways.base import Outcome
from gateways.providers import provider_class
from gateways.providers.apns import ApnsProvider, clear_token_cache, new_http2_client

from ..conftest import Recorder
from .conftest import DictSecrets, connection, run
from .h2_server import H2Request, H2Server

TEAM_ID, KEY_ID = "DEF123GHIJ", "ABC123DEFG"
DEVICE = "00fc13adff785122b4ad28809a3420982341241421348097878e577c991de8f0"


@pytest.fixture(scope="module")
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def p8(signing_key) -> str:
    return signing_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(autouse=True)
def _setup(allow_hosts) -> Iterator[None]:
    allow_hosts("api.push.apple.com", "api.sandbox.push.apple.com", "127.0.0.1")
    clear_token_cache()
    yield
    clear_token_cache()


def provider(client, p8: str, secrets=None, **settings) -> ApnsProvider:
    return ApnsProvider(
        config=connection(
            "apns",
            "push",
            settings={"team_id": TEAM_ID, "key_id": KEY_ID, "topic": "com.example.app", **settings},
            secrets={"signing_key": "file:/run/secrets/AuthKey.p8"},
        ),
        client=None,
        http2_client=client,
        secrets=secrets or DictSecrets({"file:/run/secrets/AuthKey.p8": p8}),
    )


def send(recorder: Recorder, p8: str, message, secrets=None, **settings):
    return run(
        lambda c: provider(c, p8, secrets, **settings).send(message, timeout_s=5), recorder.client()
    )


def test_registered() -> None:
    assert provider_class("apns") is ApnsProvider


def test_the_documented_alert_request(p8, signing_key, make_message) -> None:
    apns_id = "eabeae54-14a8-11e5-b60b-1697f925ec7b"
    recorder = Recorder(httpx.Response(200, headers={"apns-id": apns_id}))
    message = make_message(
        {
            "token": DEVICE,
            "title": "Game Request",
            "body": "Bob wants to play poker",
            "badge": 9,
            "sound": "bingbong.aiff",
            "data": {"gameID": "12345678"},
            "ttl_s": 3600,
        },
        key="intent-99",
    )

    result = send(recorder, p8, message)

    assert result.outcome is Outcome.ACCEPTED, result.error
    assert result.message_id == apns_id
    (request,) = recorder.requests
    assert request.method == "POST"
    assert str(request.url) == f"https://api.push.apple.com/3/device/{DEVICE}"
    assert request.headers["apns-topic"] == "com.example.app"
    assert request.headers["apns-push-type"] == "alert"
    assert request.headers["apns-priority"] == "10"
    assert request.headers["apns-collapse-id"] == "intent-99"
    assert uuid.UUID(request.headers["apns-id"]).version == 5
    assert int(request.headers["apns-expiration"]) > 0
    scheme, token = request.headers["authorization"].split(" ")
    assert scheme == "bearer"
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": KEY_ID, "typ": "JWT"}
    claims = jwt.decode(token, signing_key.public_key(), algorithms=["ES256"])
    assert claims["iss"] == TEAM_ID
    assert json.loads(request.content) == {
        "gameID": "12345678",
        "aps": {
            "alert": {"title": "Game Request", "body": "Bob wants to play poker"},
            "badge": 9,
            "sound": "bingbong.aiff",
        },
    }


def test_same_intent_same_apns_id_and_a_background_push(p8, make_message) -> None:
    recorder = Recorder(httpx.Response(200))
    send(recorder, p8, make_message({"token": DEVICE, "data": {"sync": "1"}}, key="k"))
    send(recorder, p8, make_message({"token": DEVICE, "data": {"sync": "1"}}, key="k"))
    first, second = recorder.requests
    assert first.headers["apns-id"] == second.headers["apns-id"]
    assert first.headers["apns-push-type"] == "background"
    assert first.headers["apns-priority"] == "5"
    assert json.loads(first.content) == {"sync": "1", "aps": {"content-available": 1}}
    # one provider token for both (cached), as Apple asks
    assert first.headers["authorization"] == second.headers["authorization"]


def test_development_environment_uses_the_sandbox(p8, make_message) -> None:
    recorder = Recorder(httpx.Response(200))
    send(recorder, p8, make_message({"token": DEVICE, "body": "x"}), environment="development")
    assert recorder.requests[0].url.host == "api.sandbox.push.apple.com"


@pytest.mark.parametrize(
    ("status", "reason", "outcome", "suppress", "auth_failed"),
    [
        (410, "Unregistered", Outcome.REJECTED_PERMANENT, True, False),
        (400, "BadDeviceToken", Outcome.REJECTED_PERMANENT, True, False),
        (410, "ExpiredToken", Outcome.REJECTED_PERMANENT, True, False),
        (400, "DeviceTokenNotForTopic", Outcome.REJECTED_PERMANENT, False, False),
        (400, "BadTopic", Outcome.REJECTED_PERMANENT, False, False),
        (413, "PayloadTooLarge", Outcome.REJECTED_PERMANENT, False, False),
        (403, "ExpiredProviderToken", Outcome.REJECTED_TRANSIENT, False, True),
        (403, "InvalidProviderToken", Outcome.REJECTED_TRANSIENT, False, True),
        (429, "TooManyRequests", Outcome.REJECTED_TRANSIENT, False, False),
        (500, "InternalServerError", Outcome.REJECTED_TRANSIENT, False, False),
        (503, "ServiceUnavailable", Outcome.REJECTED_TRANSIENT, False, False),
        (404, "BadPath", Outcome.EXECUTOR_ERROR, False, False),
    ],
)
def test_documented_reasons(
    p8, make_message, status, reason, outcome, suppress, auth_failed
) -> None:
    body = {"reason": reason, "timestamp": 1700000000000} if status == 410 else {"reason": reason}
    secrets = DictSecrets({"file:/run/secrets/AuthKey.p8": p8})
    result = send(
        Recorder(httpx.Response(status, json=body)),
        p8,
        make_message({"token": DEVICE, "body": "x"}),
        secrets,
    )
    assert (result.outcome, result.suppress_recipient, result.auth_failed) == (
        outcome,
        suppress,
        auth_failed,
    )
    assert result.provider_code == reason
    assert bool(secrets.invalidated) == auth_failed


def test_an_expired_provider_token_is_renewed(p8, make_message) -> None:
    answers = iter(
        [httpx.Response(403, json={"reason": "ExpiredProviderToken"}), httpx.Response(200)]
    )
    recorder = Recorder(lambda request: next(answers))

    async def twice(client):
        first = await provider(client, p8).send(
            make_message({"token": DEVICE, "body": "x"}), timeout_s=5
        )
        second = await provider(client, p8).send(
            make_message({"token": DEVICE, "body": "x"}), timeout_s=5
        )
        return first, second

    first, second = run(twice, recorder.client())
    assert first.auth_failed
    assert second.outcome is Outcome.ACCEPTED
    # ECDSA signatures are randomised: a token signed anew differs from the refused one
    # even within the same second, while a cached one would be identical.
    assert (
        recorder.requests[0].headers["authorization"]
        != recorder.requests[1].headers["authorization"]
    )


def test_bad_key_is_our_error_and_not_echoed(make_message) -> None:
    bad = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAnotakey\n-----END PRIVATE KEY-----\n"
    result = send(Recorder(httpx.Response(200)), bad, make_message({"token": DEVICE, "body": "x"}))
    assert result.outcome is Outcome.EXECUTOR_ERROR
    assert "notakey" not in result.error


def test_probe_signs_without_sending(p8) -> None:
    recorder = Recorder(httpx.Response(200))
    probe = run(lambda c: provider(c, p8).probe(timeout_s=5), recorder.client())
    assert probe.ok
    assert recorder.requests == []


def test_default_client_speaks_http2() -> None:
    async def check() -> bool:
        async with new_http2_client() as client:
            return bool(client._transport._pool._http2)  # type: ignore[attr-defined]

    assert asyncio.run(check())


# --- over real HTTP/2 -------------------------------------------------------------------


@pytest.fixture
def h2_apns(certificate) -> Iterator[H2Server]:
    cert_path, key_path = certificate
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_path, key_path)

    def respond(request: H2Request) -> tuple[int, dict[str, str], bytes]:
        if request.headers[":path"].endswith("/gone"):
            return (
                410,
                {"apns-id": request.headers["apns-id"]},
                b'{"reason":"Unregistered","timestamp":1700000000000}',
            )
        return 200, {"apns-id": request.headers["apns-id"]}, b""

    server = H2Server(tls, respond)
    server.start()
    yield server
    server.stop()


def test_over_http2(h2_apns, certificate, p8, make_message) -> None:
    trusted = ssl.create_default_context(cafile=str(certificate[0]))
    client = httpx.AsyncClient(http2=True, verify=trusted, trust_env=False)
    endpoint = f"https://127.0.0.1:{h2_apns.port}"

    async def scenario():
        async with client:
            apns = provider(client, p8, endpoint_url=endpoint)
            sent, gone = await asyncio.gather(
                apns.send(make_message({"token": DEVICE, "body": "hello"}), timeout_s=5),
                apns.send(make_message({"token": "gone", "body": "hello"}), timeout_s=5),
            )
            return sent, gone

    sent, gone = asyncio.run(scenario())

    assert sent.outcome is Outcome.ACCEPTED, sent.error
    assert (gone.outcome, gone.suppress_recipient) == (Outcome.REJECTED_PERMANENT, True)
    by_path = {r.headers[":path"]: r for r in h2_apns.requests}
    request = by_path[f"/3/device/{DEVICE}"]
    assert request.headers[":method"] == "POST"
    assert request.headers["apns-topic"] == "com.example.app"
    assert request.headers["authorization"].startswith("bearer ")
    assert request.json == {"aps": {"alert": {"body": "hello"}}}
    assert sent.message_id == request.headers["apns-id"]
