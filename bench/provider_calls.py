"""Client CPU per gateway call, by path, without the engine or a database.

    .venv/bin/python bench/provider_calls.py [--paths simulator,webhook,smtp,endpoint]
                                             [--batches 20]
                                             [--profile PATH]

Not part of ``make bench``: the tool behind the providers section's findings
(docs/performance.md). It starts the same peers as that section (the gateway simulator,
the webhook receiver and the SMTP sink of ``bench/provider_peers.py``, each its own
process; ``endpoint``: the ``events`` section's receiver, served by the
``webhook_endpoint`` provider of client webhooks), then sends ``--batches`` batches of 100 concurrent messages per path, each
batch in its own ``GatewaySession`` inside its own ``asyncio.run`` as
``intents.execution`` does, and prints msg/s and this process's CPU per message.
``--profile PATH`` prints a cProfile of that path (CPU clock) instead of timing it.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import time
import uuid
from functools import partial
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the checkout, not bench/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import events
from bench.procs import PY, Children, wait_until
from bench.providers import WEBHOOK_SECRET

BATCH = 100


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--paths", default="simulator,webhook,smtp,endpoint")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--profile", default="", help="a path to profile instead")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    from bench.providers import _listens
    from bench.run import free_port, http_answers

    ports = {n: free_port() for n in ("simulator", "webhook", "smtp", "endpoint")}
    os.environ.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        BENCH_GATEWAY_ADAPTERS="product",
        GATEWAY_HTTP_URL=f"http://127.0.0.1:{ports['simulator']}/http",
        BENCH_WEBHOOK_SECRET=WEBHOOK_SECRET,
        **events.engine_env(),  # the endpoint is http on loopback (DEBUG on, CIDR allowed)
    )
    os.environ.setdefault("DATABASE_URL", "sqlite:///:memory:")  # never opened
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench_") as tmp:
        children = Children(Path(tmp))
        peers = {
            "simulator": [PY, "manage.py", "run_gateway_simulator", "--port",
                          str(ports["simulator"])],
            "webhook": [PY, "-m", "bench.provider_peers", "webhook", "--port",
                        str(ports["webhook"])],
            "smtp": [PY, "-m", "bench.provider_peers", "smtp", "--port", str(ports["smtp"])],
            "endpoint": [PY, "-m", "bench.provider_peers", "events", "--port",
                         str(ports["endpoint"])],
        }  # fmt: skip
        try:
            for name, argv_ in peers.items():
                children.start(name, argv_, dict(os.environ))
            for name, port in ports.items():
                check = _listens if name == "smtp" else http_answers
                wait_until(partial(check, port), timeout=60, what=f"the {name} peer")
            return _measure(args, ports)
        finally:
            children.stop_all()


def _measure(args: argparse.Namespace, ports: dict[str, int]) -> int:
    import django

    django.setup()
    from gateways.base import ConnectionConfig, GatewayMessage
    from gateways.connections import default_connection
    from gateways.registry import GatewaySession

    configs = {
        "simulator": default_connection("http").config,
        "webhook": ConnectionConfig(
            key="bench-webhook",
            provider="webhook",
            channel="http",
            settings={"url": f"http://127.0.0.1:{ports['webhook']}/in"},
            secrets={"signing_secret": "env:BENCH_WEBHOOK_SECRET"},
        ),
        "endpoint": ConnectionConfig(
            key="webhook-endpoint:bench",
            provider="webhook_endpoint",
            channel="http",
            settings={"url": f"http://127.0.0.1:{ports['endpoint']}/hooks/portal"},
            secrets={"signing_secret": "env:BENCH_WEBHOOK_SECRET"},
        ),
        "smtp": ConnectionConfig(
            key="bench-smtp",
            provider="smtp",
            channel="email",
            settings={
                "host": "127.0.0.1",
                "port": ports["smtp"],
                "security": "none",
                "from": "Bench <bench@bench.example>",
            },
            secrets={},
        ),
    }

    def message(path: str, n: int) -> GatewayMessage:
        if path == "smtp":
            payload = {"subject": "bench", "text": "bench message", "to": f"u{n}@bench.example"}
        else:
            payload = {"event": "bench", "to": "bench"}
        return GatewayMessage(idempotency_key=str(uuid.uuid4()), correlation_id="", payload=payload)

    async def batch(path: str) -> None:
        async with GatewaySession() as session:
            provider = session.connection(configs[path])
            results = await asyncio.gather(
                *(provider.send(message(path, n), timeout_s=10) for n in range(BATCH))
            )
        failed = [r for r in results if r.outcome.value != "accepted"]
        if failed:
            raise SystemExit(f"{path}: {len(failed)} of {BATCH} not accepted: {failed[0]}")

    def run(path: str, batches: int) -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(batches):
            asyncio.run(batch(path))
        return time.perf_counter() - t0, time.process_time() - c0

    if args.profile:
        run(args.profile, 2)  # warm
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        run(args.profile, args.batches)
        profile.disable()
        stats = pstats.Stats(profile)
        stats.sort_stats("cumulative").print_stats(args.top)
        stats.sort_stats("tottime").print_stats(args.top)
        return 0
    for path in args.paths.split(","):
        run(path, 2)  # imports, first connections
        wall, cpu = run(path, args.batches)
        sent = args.batches * BATCH
        print(f"{path:<10} {sent / wall:8.0f} msg/s   {cpu * 1000 / sent:6.3f} CPU ms/msg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
