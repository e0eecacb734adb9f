"""Fixtures for connection tests: a folder of target files and one of connection files."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from tests.conftest import FIXTURE_TARGETS
from tests.gateways.conftest import simulator, simulator_settings  # noqa: F401 (fixtures)


class RegistryFolders:
    def __init__(self, root: Path) -> None:
        self.targets = root / "targets"
        self.connections = root / "connections"
        shutil.copytree(FIXTURE_TARGETS, self.targets)
        self.connections.mkdir()

    def connection(self, name: str, text: str) -> Path:
        path = self.connections / f"{name}.toml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def target(self, name: str, text: str) -> Path:
        path = self.targets / f"{name}.toml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def sync(self):
        from intents.registry import registry_sync

        return registry_sync(
            directory=self.targets, connections_directory=self.connections, actor_label="tests"
        )


@pytest.fixture
def folders(tmp_path: Path) -> RegistryFolders:
    return RegistryFolders(tmp_path)


SIMULATOR_SMS = """
key = "sim-a"
provider = "simulator"
channel = "sms"
rate_per_second = 5
[settings]
url = "http://127.0.0.1:9/sms"
"""


def sms_target(key: str, connections: list[str], *, delivery: str | None = None) -> str:
    names = ", ".join(f'"{c}"' for c in connections)
    delivery_line = f'delivery = "{delivery}"' if delivery else ""
    return f"""
    key = "{key}"
    version = "1.0"
    gateway = "sms"
    connections = [{names}]
    {delivery_line}
    attempt_timeout_s = 5
    acceptance_deadline_s = 600
    [retry]
    strategy = "fixed"
    initial_delay_s = 1
    multiplier = 1.0
    max_delay_s = 1
    max_attempts = 6
    [schema]
    type = "object"
    required = ["to", "text"]
    """


@pytest.fixture(scope="session")
def moto_server():
    """A real AWS API emulator (moto in server mode) on a free loopback port."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_secrets(moto_server, monkeypatch, settings):
    """A Secrets Manager client on the emulator, and the settings aimed at it."""
    import boto3

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings.SECRETS_AWS_REGION = "eu-west-1"
    settings.SECRETS_AWS_ENDPOINT_URL = moto_server
    return boto3.client("secretsmanager", region_name="eu-west-1", endpoint_url=moto_server)


SCRIPTED = "tests.connections.scripted_provider.ScriptedProvider"


@pytest.fixture
def scripted_provider(monkeypatch):
    """The ``scripted`` provider registered next to the real ones."""
    from gateways import providers
    from tests.connections import scripted_provider as module

    monkeypatch.setitem(providers.PROVIDERS, "scripted", SCRIPTED)
    module.reset()
    yield module
    module.reset()


def scripted_connection(key: str, mode: str = "up", extra: str = "") -> str:
    return f"""
    key = "{key}"
    provider = "scripted"
    channel = "sms"
    {extra}
    [settings]
    mode = "{mode}"
    """


@pytest.fixture
def engine(folders, scripted_provider, tenant, frozen_clock):
    """Submit intents to a routed target and run batches through the real engine."""
    return Engine(folders, tenant, frozen_clock)


class Engine:
    def __init__(self, folders, tenant, clock) -> None:
        self.folders, self.tenant, self.clock = folders, tenant, clock
        self.counter = 0

    def submit(self, target: str = "sms.routed", to: str = "+15550100001"):
        from intents.services import intent_submit

        self.counter += 1
        return intent_submit(
            tenant=self.tenant,
            idempotency_key=f"k-{self.counter}",
            target_key=target,
            contract_version=None,
            payload={"to": to, "text": "hello"},
        ).intent

    def run(self, size: int = 100) -> int:
        from intents.dispatch import claim_batch
        from intents.execution import execute_batch

        batch = claim_batch(
            tenant_ids=[self.tenant.id], batch_size=size, worker_id="w", lease_margin_s=30
        )
        if batch is None:
            return 0
        return execute_batch(lease_token=batch.lease_token, intent_ids=batch.intent_ids)
