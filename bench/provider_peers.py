"""The peers of the ``providers`` section, each run as its own process.

    python -m bench.provider_peers smtp --port P [--latency-ms L]
    python -m bench.provider_peers webhook --port P [--latency-ms L]
    python -m bench.provider_peers events --port P


``smtp``: an aiosmtpd server that takes every message (``250 OK`` after ``L`` ms on
``DATA``, the command that carries it) and keeps nothing but a count. ``webhook``: a
receiver on the same threaded stdlib server as the gateway simulator (one thread per
connection, HTTP/1.1 keep-alive, no Nagle) that reads the body, verifies nothing and
answers ``200 {"id": …}`` after ``L`` ms. Both write one line once they listen and run
until SIGTERM; the simulator itself is ``manage.py run_gateway_simulator --latency-ms``.

``events``: the client's receiver of the ``events`` section (``bench/events.py``), an
asyncio protocol on one thread: no thread per connection, so the ~100 connections a
batch opens at once cost it little CPU and it stays out of the engine's way. It reads
each request's body, verifies nothing and answers ``200 {"id": …}`` at once.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Sink:
    """aiosmtpd handler: accepts every message after the latency."""

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s
        self.count = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.latency_s > 0:
            await asyncio.sleep(self.latency_s)
        self.count += 1
        return "250 OK"


def serve_smtp(port: int, latency_s: float, stop: threading.Event) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(Sink(latency_s), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        print(f"smtp sink listening on 127.0.0.1:{port}", flush=True)
        stop.wait()
    finally:
        controller.stop()


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the simulator
    disable_nagle_algorithm = True
    latency_s = 0.0
    ids = itertools.count(1)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.latency_s > 0:
            time.sleep(self.latency_s)
        body = b'{"id":"hook-%d"}' % next(self.ids)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


class ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # a batch opens ~100 connections at once (as the simulator)


def serve_webhook(port: int, latency_s: float, stop: threading.Event) -> None:
    Receiver.latency_s = latency_s
    server = ReceiverServer(("127.0.0.1", port), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        print(f"webhook receiver listening on 127.0.0.1:{port}", flush=True)
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()


class EventReceiver(asyncio.Protocol):
    """HTTP/1.1 keep-alive, just enough of it: a request is its headers up to the blank
    line and ``Content-Length`` bytes of body; each is answered 200 in order."""

    ids = itertools.count(1)

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            import socket

            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            lines = head.split("\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip() or 0)
            if len(self.buffer) < end + 4 + length:
                return  # the body is still coming
            self.buffer = self.buffer[end + 4 + length :]
            self.answer(lines[0])

    def answer(self, request_line: str) -> None:
        assert self.transport is not None
        method, _, rest = request_line.partition(" ")
        body = b'{"id":"event-%d"}' % next(self.ids)
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        self.transport.write(head if method == "HEAD" else head + body)
        if rest.endswith("HTTP/1.0"):  # the bench's liveness probe
            self.transport.close()
            self.transport = None


def serve_events(port: int, latency_s: float, stop: threading.Event) -> None:
    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(EventReceiver, "127.0.0.1", port, backlog=512)
        print(f"event receiver listening on 127.0.0.1:{port}", flush=True)
        async with server:
            while not stop.is_set():
                await asyncio.sleep(0.2)

    asyncio.run(serve())


SERVERS = {"smtp": serve_smtp, "webhook": serve_webhook, "events": serve_events}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a peer of the providers bench section")
    parser.add_argument("kind", choices=sorted(SERVERS))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    SERVERS[args.kind](args.port, args.latency_ms / 1000, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
