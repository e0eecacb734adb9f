"""The provider registry, and what every provider promises: the protocol, and no secret
value in any error even when the provider echoes the whole request back."""

from __future__ import annotations

import base64
import inspect
import json
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateways.base import ConnectionConfig, Outcome
from gateways.providers import PROVIDERS, UnknownProvider, provider_class
from gateways.providers.apns import clear_token_cache as clear_apns_tokens
from gateways.providers.fcm import clear_token_cache as clear_fcm_tokens

from ..conftest import Recorder
from .conftest import DictSecrets, run

REAL_PROVIDERS = sorted(set(PROVIDERS) - {"simulator"})


def test_every_provider_of_the_contract_is_registered() -> None:
    assert set(PROVIDERS) == {
        "simulator",
        "twilio",
        "vonage",
        "sns",
        "smtp",
        "ses",
        "fcm",
        "apns",
        "webhook",
        "pagerduty",
        "slack",
    }
    assert PROVIDERS["simulator"] == "gateways.providers.simulator.SimulatorProvider"


@pytest.mark.parametrize("key", REAL_PROVIDERS)
def test_each_class_keeps_the_protocol(key: str) -> None:
    cls = provider_class(key)
    assert getattr(cls, "name", None) == key
    for method in ("send", "probe", "aclose"):
        assert inspect.iscoroutinefunction(getattr(cls, method)), method
    parameters = inspect.signature(cls).parameters
    assert {"config", "client", "secrets"} <= set(parameters)


def test_unknown_provider() -> None:
    with pytest.raises(UnknownProvider, match="unknown provider 'carrier-pigeon'"):
        provider_class("carrier-pigeon")


# --- redaction ----------------------------------------------------------------------------


def _pem(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


RSA_PEM = _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
EC_PEM = _pem(ec.generate_private_key(ec.SECP256R1()))
WHSEC = "whsec_" + base64.b64encode(b"sixteen byte key, then more").decode()

# provider -> (settings, secrets by name, payload); every secret value is distinctive.
CASES: dict[str, tuple[dict[str, Any], dict[str, str], dict[str, Any]]] = {
    "twilio": (
        {"account_sid": "AC1", "from": "+15550001"},
        {"auth_token": "twilio-TOKEN-1f2e"},
        {"to": "+15550002", "text": "x"},
    ),
    "vonage": (
        {"from": "Acme"},
        {"api_key": "vonage-KEY-77", "api_secret": "vonage-SECRET-88"},
        {"to": "+15550002", "text": "x"},
    ),
    "sns": (
        {"region": "us-east-1"},
        {"access_key_id": "AKIAREDACTME", "secret_access_key": "aws-SECRET-key-99"},
        {"to": "+15550002", "text": "x"},
    ),
    "ses": (
        {"region": "us-east-1", "from": "a@acme.example"},
        {"access_key_id": "AKIAREDACTME", "secret_access_key": "aws-SECRET-key-99"},
        {"to": "b@example.org", "subject": "s", "text": "t"},
    ),
    "fcm": (
        {"project_id": "p1"},
        {
            "service_account": json.dumps(
                {
                    "client_email": "sa@p1.iam.gserviceaccount.com",
                    "private_key": RSA_PEM,
                    "private_key_id": "k1",
                    "token_uri": "https://oauth2.googleapis.com/token",
                }
            )
        },
        {"token": "device-1", "body": "x"},
    ),
    "apns": (
        {"team_id": "TEAM", "key_id": "KEY", "topic": "com.example"},
        {"signing_key": EC_PEM},
        {"token": "device-1", "body": "x"},
    ),
    "webhook": ({"url": "https://hooks.example/in"}, {"signing_secret": WHSEC}, {"a": 1}),
    "pagerduty": ({}, {"routing_key": "pd-ROUTING-key-0123456789abcdef"}, {"summary": "x"}),
    "slack": (
        {},
        {"webhook_url": "https://hooks.slack.com/services/T0/B0/slack-SECRET-path"},
        {"summary": "x"},
    ),
}
HOSTS = [
    "api.twilio.com",
    "rest.nexmo.com",
    "sns.us-east-1.amazonaws.com",
    "email.us-east-1.amazonaws.com",
    "oauth2.googleapis.com",
    "fcm.googleapis.com",
    "api.push.apple.com",
    "hooks.example",
    "events.pagerduty.com",
    "hooks.slack.com",
]


def echo(request: httpx.Request) -> httpx.Response:
    """A provider that answers 500 with everything it was sent, headers and body."""
    if request.url.host == "oauth2.googleapis.com":  # let FCM get a token to leak
        return httpx.Response(
            200, json={"access_token": "ya29.fcm-ACCESS-token", "expires_in": 3600}
        )
    echoed = "; ".join(f"{k}: {v}" for k, v in request.headers.items())
    return httpx.Response(
        500, text=f"{request.url} {echoed} {request.content.decode(errors='replace')}"
    )


@pytest.mark.parametrize("key", sorted(CASES))
def test_no_secret_value_reaches_an_error(key: str, allow_hosts, make_message) -> None:
    allow_hosts(*HOSTS)
    clear_fcm_tokens()
    clear_apns_tokens()
    settings, secrets, payload = CASES[key]
    config = ConnectionConfig(
        key=f"{key}-1",
        provider=key,
        channel="x",
        settings=settings,
        secrets={name: f"env:{name.upper()}" for name in secrets},
    )
    source = DictSecrets({f"env:{name.upper()}": value for name, value in secrets.items()})
    recorder = Recorder(echo)
    cls = provider_class(key)

    async def scenario(client: httpx.AsyncClient):
        kwargs: dict[str, Any] = {"config": config, "client": client, "secrets": source}
        if key == "apns":
            kwargs["http2_client"] = client
        provider = cls(**kwargs)
        return await provider.send(make_message(payload), timeout_s=5), await provider.probe(
            timeout_s=5
        )

    result, probe = run(scenario, recorder.client())

    assert recorder.requests, "the provider made no request"
    assert result.outcome is not Outcome.ACCEPTED
    leaked = [
        v
        for v in [*secrets.values(), "ya29.fcm-ACCESS-token"]
        if v in result.error or v in probe.detail
    ]
    assert leaked == []
    for value in secrets.values():  # and no fragment long enough to matter
        for line in value.splitlines():
            if len(line) >= 12:
                assert line not in result.error


def test_a_secret_cut_by_truncation_leaves_no_fragment(allow_hosts, make_message) -> None:
    allow_hosts("api.twilio.com")
    token = "tw-" + "S3CRET" * 10
    padding = "x" * 145  # puts the token across the 160-character snippet cut
    recorder = Recorder(httpx.Response(500, text=f"{padding} {token} trailing"))
    provider = provider_class("twilio")
    config = ConnectionConfig(
        key="t",
        provider="twilio",
        channel="sms",
        settings={"account_sid": "AC1", "from": "+15550001"},
        secrets={"auth_token": "env:T"},
    )
    result = run(
        lambda c: provider(config=config, client=c, secrets=DictSecrets({"env:T": token})).send(
            make_message(), timeout_s=5
        ),
        recorder.client(),
    )
    assert "tw-S3C" not in result.error
    assert "[redacted]" in result.error


@pytest.mark.parametrize("key", REAL_PROVIDERS)
def test_only_smtp_and_apns_go_without_the_shared_http_client(key: str) -> None:
    config = ConnectionConfig(key="c", provider=key, channel="x")
    needs = provider_class(key).needs_http_client(config)  # type: ignore[attr-defined]
    assert needs is (key not in {"smtp", "apns"})


EXAMPLES = Path(__file__).resolve().parents[3] / "conf" / "connections"


def uncommented(path: Path) -> dict[str, Any]:
    """The example's TOML: the lines after its prose, without their leading ``# ``."""
    body = path.read_text(encoding="utf-8").split("#\n", 1)[1]
    return tomllib.loads(
        "\n".join(line.removeprefix("# ").removeprefix("#") for line in body.splitlines())
    )


@pytest.mark.parametrize("key", REAL_PROVIDERS)
def test_each_provider_ships_a_commented_example(key: str) -> None:
    path = EXAMPLES / f"{key}.toml"
    text = path.read_text(encoding="utf-8")
    assert tomllib.loads(text) == {}  # comments only: the loader skips it
    example = uncommented(path)
    assert example["provider"] == key
    settings, secrets, _ = {**CASES, "smtp": SMTP_CASE}[key]  # what the provider needs
    assert set(settings) <= set(example.get("settings", {})) | {"endpoint_url"}
    assert set(secrets) <= set(example.get("secrets", {}))
    for reference in example.get("secrets", {}).values():
        assert reference.split(":", 1)[0] in {"env", "file", "aws-secretsmanager"}


SMTP_CASE: tuple[dict[str, Any], dict[str, str], dict[str, Any]] = (
    {"host": "smtp.example.com", "security": "starttls", "from": "a@acme.example"},
    {"username": "u", "password": "p"},
    {},
)
