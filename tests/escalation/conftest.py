"""Fixtures of the escalation tests: a loopback receiver standing in for PagerDuty, Slack
or a webhook endpoint, and the registry files written for one test."""

from __future__ import annotations

import contextlib
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from tests.conftest import FIXTURE_TARGETS
from tests.deadletters.conftest import (  # noqa: F401  (the engine's fixtures, shared)
    REJECTED,
    dead_letter,
    dead_lettered,
    scripted,
    submit,
)

PORTS = range(8350, 8400)  # this worktree's share of the machine's ports
ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"  # 32 characters, as documented


class Receiver:
    """Records every POST; answers from ``statuses`` in turn (then 202)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def bodies(self, path: str | None = None) -> list[Any]:
        with self.lock:
            return [r["json"] for r in self.requests if path is None or r["path"] == path]

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        with self.lock:
            self.requests.append(
                {"path": path, "headers": headers, "json": json.loads(body or b"null")}
            )
            status = self.statuses.pop(0) if self.statuses else 202
        if path == "/v2/enqueue":  # the Events API's documented answer
            data = json.loads(body)
            answer = {"status": "success", "message": "Event processed"}
            if status >= 300:
                answer = {"status": "unavailable", "message": "try again"}
            return status, json.dumps({**answer, "dedup_key": data.get("dedup_key")}).encode()
        return status, b"ok" if status < 300 else b"rollup_error"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    recorder = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, reply = recorder.answer(self.path, headers, body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    for port in PORTS:
        with contextlib.suppress(OSError):
            recorder.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
            break
    assert recorder.server is not None, "no free port in 8350-8399"
    thread = threading.Thread(target=recorder.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        recorder.server.shutdown()
        recorder.server.server_close()


@pytest.fixture
def registry(db, tmp_path, settings, receiver, monkeypatch):
    """``registry(rules_toml)``: ops connections pointing at ``receiver`` and the given
    escalations file, loaded through ``sync_targets``; returns the command's output."""
    monkeypatch.setenv("ESC_PD_ROUTING_KEY", ROUTING_KEY)
    monkeypatch.setenv("ESC_SLACK_URL", f"{receiver.url}/slack")
    connections = tmp_path / "connections"
    connections.mkdir()
    (connections / "pd.toml").write_text(
        'key = "pd"\nprovider = "pagerduty"\n'
        f'[settings]\nendpoint_url = "{receiver.url}"\n'
        '[secrets]\nrouting_key = "env:ESC_PD_ROUTING_KEY"\n'
    )
    (connections / "slack.toml").write_text(
        'key = "chat"\nprovider = "slack"\n[secrets]\nwebhook_url = "env:ESC_SLACK_URL"\n'
    )
    (connections / "hook.toml").write_text(
        f'key = "hook"\nprovider = "webhook"\n[settings]\nurl = "{receiver.url}/hook"\n'
    )
    (connections / "sim.toml").write_text(
        f'key = "sim-sms"\nprovider = "simulator"\nchannel = "sms"\n'
        f'[settings]\nurl = "{receiver.url}/sms"\n'
    )
    settings.ESCALATIONS_FILE = tmp_path / "escalations.toml"

    def _load(rules: str) -> str:
        Path(settings.ESCALATIONS_FILE).write_text(rules)
        out = io.StringIO()
        call_command(
            "sync_targets",
            "--dir",
            str(FIXTURE_TARGETS),
            "--connections-dir",
            str(connections),
            stdout=out,
        )
        return out.getvalue()

    return _load
