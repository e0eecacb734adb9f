"""The peers of the ``providers`` section, each run as its own process.

    python -m bench.provider_peers smtp --port P [--latency-ms L]
    python -m bench.provider_peers webhook --port P [--latency-ms L]

``smtp``: an aiosmtpd server that takes every message (``250 OK`` after ``L`` ms on
``DATA``, the command that carries it) and keeps nothing but a count. ``webhook``: a
receiver on the same threaded stdlib server as the gateway simulator (one thread per
connection, HTTP/1.1 keep-alive, no Nagle) that reads the body, verifies nothing and
answers ``200 {"id": …}`` after ``L`` ms. Both write one line once they listen and run
until SIGTERM; the simulator itself is ``manage.py run_gateway_simulator --latency-ms``.
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a peer of the providers bench section")
    parser.add_argument("kind", choices=("smtp", "webhook"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    serve = serve_smtp if args.kind == "smtp" else serve_webhook
    serve(args.port, args.latency_ms / 1000, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
