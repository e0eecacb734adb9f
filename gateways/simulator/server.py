"""The simulator over real HTTP: a threaded stdlib server around ``GatewaySimulator``.

Endpoints (CONTRACT.md, "Gateway simulator", plus the status lookup)::

    POST   /sms  /push  /http  /email  a message; its recipient decides the answer
    GET    /sms/status/<key>           was a message with Idempotency-Key <key> accepted?
    GET    /push/status/<key>            (likewise; the three paths share one key space)
    GET    /http/status/<key>
    GET    /messages                   every POST received, oldest first
    DELETE /messages                   empty that list

A status lookup answers 200 ``{"idempotency_key", "status": "accepted", "message_id"}``
(and ``X-Message-ID``) when a POST with that key was accepted, else 404
``{"status": "unknown"}`` (also for a ``00504`` message: held, never accepted). The key
is one percent-encoded path segment. Lookups are not recorded in ``/messages``, so
counting deliveries is unaffected.

One thread per connection, so a held (``00504``) request never blocks the others.
"""

from __future__ import annotations

import logging
import select
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .core import GatewaySimulator, SimResponse

logger = logging.getLogger("gateways.simulator")

# A held request is released when its client disconnects, or after this long.
HOLD_CAP_S = 300.0
_HOLD_POLL_S = 0.1
_MAX_BODY_BYTES = 1024 * 1024


class SimulatorServer(ThreadingHTTPServer):
    """Serves one ``GatewaySimulator``; ``stop()`` ends it and releases held requests."""

    daemon_threads = True
    block_on_close = False  # held requests end on their own once ``stopping`` is set
    request_queue_size = 512  # a batch opens ~100 connections at once

    def __init__(
        self,
        address: tuple[str, int],
        *,
        simulator: GatewaySimulator | None = None,
        latency_s: float = 0.0,
    ) -> None:
        self.simulator = simulator or GatewaySimulator()
        self.latency_s = latency_s
        self.stopping = threading.Event()
        self._held = 0
        self._held_changed = threading.Condition()
        super().__init__(address, SimulatorRequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN (reverse DNS), which can stall
        # for seconds on a machine without DNS; the simulator never needs that name.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        if isinstance(host, bytes):  # the typeshed allows it for AF_UNIX; we bind TCP
            host = host.decode()
        return f"http://{host}:{port}"

    @property
    def held_count(self) -> int:
        """Requests currently held without an answer."""
        with self._held_changed:
            return self._held

    def wait_for_held(self, count: int, timeout: float) -> bool:
        """Block until exactly ``count`` requests are held; False on timeout."""
        with self._held_changed:
            return self._held_changed.wait_for(lambda: self._held == count, timeout)

    def _change_held(self, delta: int) -> None:
        with self._held_changed:
            self._held += delta
            self._held_changed.notify_all()

    def stop(self) -> None:
        """Stop serving (call from another thread than ``serve_forever``) and close."""
        self.stopping.set()
        self.shutdown()
        self.server_close()


class SimulatorRequestHandler(BaseHTTPRequestHandler):
    server: SimulatorServer
    protocol_version = "HTTP/1.1"  # keep-alive: the adapters pool their connections
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server_version = "GatewaySimulator/1.0"

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > _MAX_BODY_BYTES:
            self.close_connection = True
            self._respond(SimResponse(400, {"error": "bad or missing Content-Length"}))
            return
        body = self.rfile.read(length) if length else b""
        response = self.server.simulator.handle(
            self.command, self.path, dict(self.headers.items()), body
        )
        if response.hold:
            self._hold_until_client_gives_up()
            return
        if self.server.latency_s > 0 and self.server.stopping.wait(self.server.latency_s):
            self.close_connection = True
            return
        self._respond(response)

    def _respond(self, response: SimResponse) -> None:
        payload = response.body_bytes()
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _hold_until_client_gives_up(self) -> None:
        self.close_connection = True  # nothing is ever sent on this connection
        self.server._change_held(+1)
        try:
            deadline = time.monotonic() + HOLD_CAP_S
            while time.monotonic() < deadline and not self.server.stopping.is_set():
                readable, _, _ = select.select([self.connection], [], [], _HOLD_POLL_S)
                # Readable means the client's FIN (it gave up) or a pipelined request,
                # which this connection could never answer in order: either ends the hold.
                if readable:
                    return
        finally:
            self.server._change_held(-1)

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s " + format, self.address_string(), *args)
