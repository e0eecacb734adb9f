"""Client webhook tests: a real HTTP receiver on a loopback port, an endpoint made
through the API, and the engine driven by ``run_once`` under the frozen clock."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.api.conftest import ApiClient, make_key
from tests.engine.conftest import scripted, submit  # noqa: F401  (fixtures used here)

# This helper's share of the machine's ports (a busy port is skipped).
PORTS = range(8300, 8350)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each POST with the next scripted status (then ``default``), keeps them all."""

    url: str
    received: list[Received] = field(default_factory=list)
    script: list[int] = field(default_factory=list)
    default: int = 200

    def answer(self) -> int:
        return self.script.pop(0) if self.script else self.default


def _server(receiver_box: list[Receiver]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver = receiver_box[0]
            body = self.rfile.read(int(self.headers["Content-Length"]))
            receiver.received.append(
                Received({k.lower(): v for k, v in self.headers.items()}, body)
            )
            self.send_response(receiver.answer())
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    for port in PORTS:
        try:
            return ThreadingHTTPServer(("127.0.0.1", port), Handler)
        except OSError:
            continue
    raise RuntimeError("no free port in 8300-8349")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box: list[Receiver] = []
    server = _server(box)
    box.append(Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hooks"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box[0]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def webhook_settings(settings):
    """http to a loopback receiver: DEBUG on (else https only) and 127.0.0.0/8 allowed."""
    settings.DEBUG = True
    settings.WEBHOOK_ALLOWED_CIDRS = ["127.0.0.0/8"]
    return settings


@pytest.fixture
def hooks_api(tenant) -> ApiClient:
    return ApiClient(make_key(tenant, ["webhooks:write", "webhooks:read"]))


@pytest.fixture
def api(tenant) -> ApiClient:
    """A key with every scope."""
    return ApiClient(make_key(tenant))


@pytest.fixture
def make_endpoint(hooks_api, webhook_settings, receiver):
    def _make(**body: Any) -> dict[str, Any]:
        response = hooks_api.post("/api/v1/webhook-endpoints", {"url": receiver.url, **body})
        assert response.status_code == 201, response.content
        return json.loads(response.content)

    return _make
