"""``manage.py run_gateway_simulator``: the local gateway simulator, until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateways.providers.common import ProviderConfigError
from gateways.simulator import GatewaySimulator, SimulatorServer
from gateways.simulator.receipts import ReceiptSender

MAX_LATENCY_MS = 600_000.0


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {value!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {port}")
    return port


def _latency_ms(value: str) -> float:
    try:
        latency = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of milliseconds: {value!r}") from None
    if not 0 <= latency <= MAX_LATENCY_MS:  # also refuses nan
        raise argparse.ArgumentTypeError(f"latency must be 0-{MAX_LATENCY_MS:g} ms, got {value}")
    return latency


class Command(BaseCommand):
    help = (
        "Serve the SMS, push, HTTP and email gateway simulator "
        "(POST /sms /push /http /email, GET /<gateway>/status/<idempotency key>)."
    )
    requires_system_checks: list[str] = []  # needs no database or app checks

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        django_error = parser.error

        def one_line_error(message: str) -> None:
            # argparse prints the whole usage first; a script wants the reason alone.
            if parser.called_from_command_line:
                parser.exit(2, f"{parser.prog}: error: {message}\n")
            django_error(message)  # raises CommandError when called from code

        parser.error = one_line_error  # type: ignore[method-assign]
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=_port, default=8025, help="0 picks a free port")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument(
            "--latency-ms", type=_latency_ms, default=0.0, help="delay before every answer"
        )
        parser.add_argument(
            "--receipts-url",
            default="",
            help="post a signed delivery receipt here after each acceptance "
            "({connection} becomes simulator-sms, simulator-push, …)",
        )
        parser.add_argument(
            "--receipts-secret",
            default="",
            help="whsec_… to sign them with (default: GATEWAY_SIMULATOR_RECEIPT_SECRET)",
        )
        parser.add_argument(
            "--receipt-delay-ms", type=_latency_ms, default=200.0, help="after acceptance"
        )

    def handle(
        self,
        *args: Any,
        host: str,
        port: int,
        latency_ms: float,
        receipts_url: str = "",
        receipts_secret: str = "",
        receipt_delay_ms: float = 200.0,
        **options: Any,
    ) -> None:
        simulator = GatewaySimulator()
        if receipts_url:
            receipts_secret = receipts_secret or str(
                settings.GATEWAY_SIMULATOR_RECEIPT_SECRET or ""
            )
            if not receipts_secret:
                raise CommandError("--receipts-url needs --receipts-secret whsec_…")
            try:
                sender = ReceiptSender(
                    url=receipts_url, secret=receipts_secret, delay_s=receipt_delay_ms / 1000
                )
            except ProviderConfigError as exc:
                raise CommandError(f"--receipts-secret: {exc}") from None
            simulator.on_accepted = sender.on_accepted
        try:
            server = SimulatorServer((host, port), simulator=simulator, latency_s=latency_ms / 1000)
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        stop = threading.Event()

        def request_stop(signum: int, frame: object) -> None:
            stop.set()

        signals = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, request_stop) for sig in signals}
        thread = threading.Thread(target=server.serve_forever, name="gateway-simulator")
        thread.start()
        try:
            self.stdout.write(f"Gateway simulator listening on {server.base_url}")
            self.stdout.flush()  # a parent process waits for this line on a pipe
            while not stop.wait(0.5):  # a timed wait lets the signal handler run promptly
                pass
        finally:
            server.stop()
            thread.join()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write("Gateway simulator stopped")
