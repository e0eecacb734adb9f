"""A whole running stack for end-to-end tests: real processes on a throwaway database.

The simulator, gunicorn, the dispatcher and a django-q2 cluster run as subprocesses, as
in production; tests talk to them only over HTTP, like a client and a gateway would.
Waiting here is waiting for real processes, bounded by explicit deadlines.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ROOT / "tests" / "fixtures" / "e2e_targets"
PY = sys.executable
# `make test-e2e-redis` sets this (redis://127.0.0.1:6379/15): the stack's processes then
# use django-q2's Redis broker instead of the ORM one. Only that database is flushed.
E2E_REDIS_URL = os.environ.get("E2E_REDIS_URL", "")


def redis_broker_flush(url: str) -> None:
    """Empty the one Redis database the e2e stack uses (never FLUSHALL)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_T = TypeVar("_T")


def wait_for(condition: Callable[[], _T | None], *, timeout: float, what: str) -> _T:
    """``condition()``'s first truthy value, asked every 0.1 s until ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@pytest.fixture
def e2e_database(tmp_path) -> Iterator[str]:
    """A fresh database of the kind under test: a SQLite file, or a new PostgreSQL database."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        yield f"sqlite:///{tmp_path / 'e2e.sqlite3'}"
        return
    import psycopg

    name = f"e2e_{uuid.uuid4().hex[:12]}"
    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres", scheme="postgresql"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Stack:
    def __init__(self, env: dict[str, str], sim_port: int, web_port: int, log_dir: Path):
        self.env = env
        self.sim = f"http://127.0.0.1:{sim_port}"
        self.web = f"http://127.0.0.1:{web_port}"
        self.sim_port = sim_port
        self.web_port = web_port
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen] = {}
        self.api_key = ""

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [PY, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        if done.returncode:
            raise AssertionError(f"manage.py {' '.join(args)} failed: {done.stderr[-2000:]}")
        return done.stdout

    def start(self, name: str, *command: str, extra_env: dict[str, str] | None = None) -> None:
        log = (self.log_dir / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            list(command),
            cwd=ROOT,
            env={**self.env, **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_simulator(self, latency_ms: int = 0) -> None:
        self.start(
            "simulator",
            PY, "manage.py", "run_gateway_simulator", "--port", str(self.sim_port),
            "--latency-ms", str(latency_ms),
        )  # fmt: skip
        wait_for(lambda: self._answers(f"{self.sim}/messages"), timeout=20, what="simulator")

    def start_web(self) -> None:
        gunicorn = str(Path(PY).with_name("gunicorn"))
        self.start(
            "web", gunicorn, "portal.wsgi", "--bind", f"127.0.0.1:{self.web_port}",
            "--workers", "2", "--threads", "4",
        )  # fmt: skip
        wait_for(lambda: self._answers(f"{self.web}/healthz"), timeout=30, what="web server")

    def start_workers(self, name: str = "workers") -> None:
        self.start(name, PY, "manage.py", "qcluster")

    def start_dispatcher(self, name: str = "dispatcher") -> None:
        self.start(name, PY, "manage.py", "run_dispatcher")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        os.killpg(process.pid, sig)
        process.wait(timeout=30)

    def stop_all(self) -> None:
        for name in list(self.processes):
            process = self.processes[name]
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        # The test is over: a short grace, then SIGKILL (a django-q2 cluster's graceful
        # stop can take its full poll cycle, which would only slow the suite down).
        deadline = time.monotonic() + 3
        for name, process in list(self.processes.items()):
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
            self.processes.pop(name)

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            return httpx.get(url, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    # --- the client's and the gateway's view
    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=f"{self.web}/api/v1",
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=10,
        )

    def submit(self, to: str, *, key: str | None = None, target: str = "sms.e2e") -> dict:
        payload = (
            {"token": to, "title": "t"} if target.startswith("push") else {"to": to, "text": "hi"}
        )
        with self.api() as client:
            response = client.post(
                "/intents",
                json={"target": target, "payload": payload},
                headers={"Idempotency-Key": key or uuid.uuid4().hex},
            )
        assert response.status_code == 201, response.text
        return response.json()

    def intent(self, intent_id: str) -> dict:
        with self.api() as client:
            return client.get(f"/intents/{intent_id}").json()

    def attempts(self, intent_id: str) -> list[dict]:
        with self.api() as client:
            return client.get(f"/intents/{intent_id}/attempts").json()

    def wait_terminal(self, intent_id: str, timeout: float = 60) -> dict:
        terminal = {"accepted", "failed", "exhausted", "expired", "cancelled"}
        # wait_for returns the condition's truthy value: here the intent itself.
        return cast(
            dict,
            wait_for(
                lambda: (i := self.intent(intent_id))["status"] in terminal and i,
                timeout=timeout,
                what=f"intent {intent_id} to finish",
            ),
        )

    def gateway_messages(self) -> list[dict]:
        return httpx.get(f"{self.sim}/messages", timeout=5).json()


@pytest.fixture
def stack(e2e_database, tmp_path) -> Iterator[Stack]:
    sim_port, web_port = free_port(), free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings.dev",
        "DATABASE_URL": e2e_database,
        "TARGETS_DIR": str(TARGETS),
        "GATEWAY_SMS_URL": f"http://127.0.0.1:{sim_port}/sms",
        "GATEWAY_PUSH_URL": f"http://127.0.0.1:{sim_port}/push",
        "GATEWAY_HTTP_URL": f"http://127.0.0.1:{sim_port}/http",
        # Short enough for the kill -9 test to see lease_lost soon; long enough that a
        # batch queued behind others on a loaded 2-core machine keeps its lease.
        "LEASE_MARGIN_S": "5",
        "SWEEP_INTERVAL_S": "0.5",
        "DISPATCH_IDLE_POLL_S": "0.05",
        "Q_WORKERS": "2",
        "Q_TIMEOUT_S": "30",
        "Q_RETRY_S": "40",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
        "LOG_JSON": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REDIS_URL", None)  # the broker is chosen here, never inherited by accident
    if E2E_REDIS_URL:
        redis_broker_flush(E2E_REDIS_URL)
        env["REDIS_URL"] = E2E_REDIS_URL
    (tmp_path / "prometheus").mkdir()
    stack = Stack(env, sim_port, web_port, tmp_path)
    stack.manage("migrate", "--no-input", "-v0")
    stack.manage("sync_targets")
    stack.manage("create_tenant", "e2e")
    stack.api_key = stack.manage("create_api_key", "--tenant", "e2e").strip().splitlines()[-1]
    try:
        yield stack
    finally:
        stack.stop_all()
        if E2E_REDIS_URL:
            redis_broker_flush(E2E_REDIS_URL)
        for log in sorted(tmp_path.glob("*.log")):
            text = log.read_text(errors="replace")
            if "Traceback" in text:
                print(f"--- {log.name} (last 3000 chars)\n{text[-3000:]}")
