"""Issue 16's engine figure: client webhooks cost each intent a second delivery.

Run by ``bench/run.py`` (section ``events``). Two pairs of engine runs, each run exactly
as the engine section's product run (``run_dispatcher`` + ``qcluster``, 2 workers, 300
warm-up intents, ``--events-messages`` intents released at once):

- **no endpoints**: the bench tenant has no webhook endpoint, so nothing but the intents;
- **one endpoint**: the tenant has one enabled endpoint subscribed to ``intent.accepted``
  (made by ``webhook_endpoint_create``, the product's own service), so recording each
  acceptance writes an event and its delivery (an internal intent), which the same engine
  then sends through the ``webhook_endpoint`` provider, signed, to a real receiver on
  loopback (``python -m bench.provider_peers events``: an asyncio server that answers
  200 at once). That run is timed until the last delivery is terminal too.

The first pair delivers the intents (``sms.otp``) to the in-process gateway, as the
engine section does: there the event's HTTP request is the only network call, so the
pair prices an HTTP delivery against an in-process one. The second pair delivers them
(``http.webhook``) through the product's HTTP adapter to the gateway simulator in its own
process, as the providers section's simulator path and as production, where every
delivery is a request to a provider: an intent and its event are then one request each,
the "two deliveries" the target assumes.

The figure is intents per second with the endpoint over intents per second without;
target ≥ 0.45 (each intent then costs two deliveries, so 0.5 is the engine's own bound).
All runs have ``DEBUG`` on (``BENCH_DEBUG=1``; the product calls an ``http://``
endpoint only then) and ``WEBHOOK_ALLOWED_CIDRS=127.0.0.0/8`` (else loopback is refused).

This module is also the child that makes the endpoint:
``python -m bench.events endpoint --tenant NAME --url URL``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from bench.procs import PY, run_checked, wait_until
from bench.providers import HTTP_PAYLOAD

if TYPE_CHECKING:
    from bench.run import Bench

EVENTS_TARGET_RATIO = 0.45
EVENT_TYPE = "intent.accepted"
PEER = "peer_events"
SIMULATOR = "peer_events_simulator"
HTTP_TARGET = "http.webhook"


def engine_env() -> dict[str, str]:
    """What both runs' engine processes get (the same, so only the endpoint differs)."""
    return {"BENCH_DEBUG": "1", "WEBHOOK_ALLOWED_CIDRS": "127.0.0.0/8"}


def measure(bench: Bench, *, messages: int) -> dict:
    """Both pairs of runs: the intents to the in-process gateway, then over HTTP."""
    from bench.run import TENANT, free_port, http_answers

    port = free_port()
    template = bench.database("eventstpl", template=bench.template)
    run_checked(
        [PY, "-m", "bench.events", "endpoint", "--tenant", TENANT,
         "--url", f"http://127.0.0.1:{port}/hooks/portal"],
        bench.env(template, **engine_env()),
        what="the webhook endpoint",
    )  # fmt: skip
    bench.children.start(PEER, [PY, "-m", "bench.provider_peers", "events", "--port", str(port)],
                         bench.env(template))  # fmt: skip
    out: dict = {"messages": messages}
    try:

        def listening() -> bool:
            bench.children.check_alive(PEER)
            return http_answers(port)

        wait_until(listening, timeout=60, what="the event receiver")
        out.update(_pair(bench, messages=messages, template=template, gateway="in-process"))
        out["http"] = _http_pair(bench, messages=messages, template=template)
    finally:
        bench.children.stop(PEER)
    return out


def _http_pair(bench: Bench, *, messages: int, template: str) -> dict:
    """The intents through the product's HTTP adapter to the gateway simulator in its own
    process (as the providers section's simulator path), so an intent and its event are
    each one HTTP request: the premise of "two deliveries" behind the 0.45."""
    from bench.run import free_port, http_answers

    port = free_port()
    bench.children.start(
        SIMULATOR,
        [PY, "manage.py", "run_gateway_simulator", "--port", str(port), "--latency-ms", "0"],
        bench.env(template),
    )
    try:

        def listening() -> bool:
            bench.children.check_alive(SIMULATOR)
            return http_answers(port)

        wait_until(listening, timeout=60, what="the gateway simulator")
        return _pair(
            bench,
            messages=messages,
            template=template,
            gateway="http",
            target=HTTP_TARGET,
            payload=HTTP_PAYLOAD,
            env={
                "BENCH_GATEWAY_ADAPTERS": "product",
                "GATEWAY_HTTP_URL": f"http://127.0.0.1:{port}/http",
            },
        )
    finally:
        bench.children.stop(SIMULATOR)


def _pair(
    bench: Bench,
    *,
    messages: int,
    template: str,
    gateway: str,
    target: str = "sms.otp",
    payload: str | None = None,
    env: dict[str, str] | None = None,
) -> dict:
    """One engine run without the endpoint and one with it, and their ratio."""
    from bench.run import SMS_PAYLOAD

    extra = {**engine_env(), **(env or {})}
    out: dict = {}
    for name, db_template in (("none", bench.template), ("endpoint", template)):
        print(
            f"events: {name}, intents to the {gateway} gateway, {messages:,} messages...",
            flush=True,
        )
        peer_cpu = bench.children.cpu_seconds(PEER)
        result = bench.engine(
            f"events{name}{gateway.replace('-', '')}",
            lambda db: bench.start_product_engine(db, **extra),
            messages=messages,
            template=db_template,
            target=target,
            payload=payload or SMS_PAYLOAD,
            deliveries=True,
        )
        served = result["deliveries"] + (300 if name == "endpoint" else 0)  # + warm-up
        peer_cpu = bench.children.cpu_seconds(PEER) - peer_cpu
        result["peer_cpu_ms_per_delivery"] = peer_cpu * 1000 / served if served else None
        result.pop("open_intents_over_time", None)
        out[name] = result
    base = out["none"]["messages_per_s"]
    out["ratio"] = out["endpoint"]["messages_per_s"] / base if base else None
    return out


def shortfalls(result: dict) -> list[str]:
    """Notes for the table: a run that did not deliver every intent and event."""
    notes = []
    pairs = [("", result)] + ([("http ", result["http"])] if "http" in result else [])
    for label, pair in pairs:
        for name in ("none", "endpoint"):
            r = pair[name]
            expected = r["messages"] if name == "endpoint" else 0
            if (
                not r["completed"]
                or r["accepted"] != r["messages"]
                or r["deliveries_accepted"] != expected
                or r["deliveries"] != expected
            ):
                notes.append(
                    f"events {label}{name}: {r['accepted']:,} of {r['messages']:,} accepted, "
                    f"{r['deliveries_accepted']:,} of {r['deliveries']:,} deliveries delivered "
                    f"(expected {expected:,}) when timed"
                )
    return notes


def rows(result: dict) -> list[tuple[str, str, str, str, str]]:
    out = _pair_rows(result, "in-process gateway")
    if "http" in result:
        out += _pair_rows(result["http"], "HTTP gateway", messages=result["messages"])
    return out


def _pair_rows(
    pair: dict, gateway: str, *, messages: int | None = None
) -> list[tuple[str, str, str, str, str]]:
    from bench.run import fmt

    none, endpoint = pair["none"], pair["endpoint"]
    count = messages if messages is not None else pair["messages"]
    return [
        (
            f"engine, 1 endpoint/tenant, {gateway} (msg/s)",
            fmt(endpoint["messages_per_s"]),
            fmt(none["messages_per_s"]),
            fmt(pair["ratio"], 2),
            f">= {EVENTS_TARGET_RATIO}",
        ),
        (
            "  deliveries per s (intents+events)",
            fmt((endpoint["terminal"] + endpoint["deliveries_terminal"]) / endpoint["seconds"])
            if endpoint["seconds"]
            else "-",
            fmt(none["messages_per_s"]),
            "",
            "",
        ),
        (
            f"  seconds for {count:,} messages",
            fmt(endpoint["seconds"], 2),
            fmt(none["seconds"], 2),
            "",
            "",
        ),
        (
            "  engine CPU ms per message",
            fmt(endpoint["cpu_ms_per_message"], 3),
            fmt(none["cpu_ms_per_message"], 3),
            "",
            "",
        ),
        (
            "  receiver CPU ms per delivery",
            fmt(endpoint["peer_cpu_ms_per_delivery"], 3),
            "",
            "",
            "",
        ),
    ]


def _endpoint_child(tenant: str, url: str) -> None:
    """Runs in a Django process (DJANGO_SETTINGS_MODULE, DATABASE_URL from the bench)."""
    import django

    django.setup()
    from portal.accounts.models import Tenant
    from portal.audit.services import Actor
    from portal.events.services import webhook_endpoint_create

    endpoint, _ = webhook_endpoint_create(
        tenant=Tenant.objects.get(name=tenant),
        url=url,
        event_types=[EVENT_TYPE],
        description="bench receiver",
        actor=Actor.system("bench"),
    )
    print(endpoint.public_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the events section's webhook endpoint")
    sub = parser.add_subparsers(dest="command", required=True)
    endpoint = sub.add_parser("endpoint")
    endpoint.add_argument("--tenant", required=True)
    endpoint.add_argument("--url", required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    _endpoint_child(args.tenant, args.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
