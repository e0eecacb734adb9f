"""Shared by the provider tests: a dict-backed secret source and a way to run one call."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateways.base import ConnectionConfig

T = TypeVar("T")


class DictSecrets:
    """A ``SecretSource`` over a dict of reference -> value, recording what was asked."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = dict(values)
        self.reads: list[str] = []
        self.invalidated: list[str] = []

    def get(self, reference: str) -> str:
        self.reads.append(reference)
        try:
            return self.values[reference]
        except KeyError:
            raise LookupError(f"secret reference {reference} cannot be resolved") from None

    def invalidate(self, reference: str) -> None:
        self.invalidated.append(reference)


def connection(
    provider: str,
    channel: str,
    *,
    settings: dict[str, Any] | None = None,
    secrets: dict[str, str] | None = None,
    key: str | None = None,
) -> ConnectionConfig:
    return ConnectionConfig(
        key=key or f"{provider}-test",
        provider=provider,
        channel=channel,
        settings=settings or {},
        secrets=secrets or {},
    )


def run(factory: Callable[[httpx.AsyncClient], Awaitable[T]], client: httpx.AsyncClient) -> T:
    """Run one provider call on a fresh event loop, closing the client afterwards."""

    async def scenario() -> T:
        async with client:
            return await factory(client)

    return asyncio.run(scenario())


@pytest.fixture
def allow_hosts(settings):
    def allow(*hosts: str) -> None:
        settings.GATEWAY_ALLOWED_HOSTS = list(hosts)

    return allow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto in server mode on a free loopback port: a real HTTP peer that checks SigV4
    requests and keeps what it was sent in its backends (shared with this process)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def moto(moto_server: str, allow_hosts) -> Iterator[str]:
    """The moto server, emptied before the test, and its host allowed."""
    allow_hosts("127.0.0.1")
    httpx.post(f"{moto_server}/moto-api/reset").raise_for_status()
    yield moto_server


@pytest.fixture(scope="session")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is also its own CA)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
