"""Where the time goes: cProfile of the API intake and the engine in one process.

    .venv/bin/python bench/profiling.py [--requests 500] [--messages 2000] [--top 30]

Not part of ``make bench``: a tool to explain a low ratio. It prepares a ``bench_*``
database as ``bench/run.py`` does, then, in this process, posts ``--requests`` intents
through Django's test client (the full middleware and DRF stack, no network) and runs
the engine's claim + execute + record over ``--messages`` intents inline (no django-q2).
For each it prints per-phase wall time without the profiler, the SQL statements per
unit of work, and the top functions by cumulative and own time. Last, it times the
open-intent quota query at ``--quota-sizes`` open intents. ``--receipts N`` first
posts N signed simulator receipts (``POST /hooks/receipts/simulator-sms``, as the
``receipts`` section) and prints their statements and profile. ``--events N`` runs the
engine inline over N intents with one ``intent.accepted`` webhook endpoint for the tenant
(the ``events`` section's setup, its loopback receiver in its own process), so over N
intents and their N event deliveries, with the phases of the events path.
Drops its databases on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import from the checkout, not bench/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.pg import BenchError, Server, insert_intents, scalar
from bench.run import Bench, parse_args

TABLE_PREFIXES = ("intents_", "accounts_", "django_q", "observability_", "deadletters_")


def statement_kinds(queries: list[dict]) -> tuple[Counter[str], defaultdict[str, float]]:
    """How many statements of each kind (verb + first table), and their summed seconds."""
    counts: Counter[str] = Counter()
    seconds: defaultdict[str, float] = defaultdict(float)
    for query in queries:
        words = query["sql"].split()
        head = words[0].upper() if words else "?"
        tables = (w.strip('"').split('"')[0] for w in words)
        table = next((t for t in tables if t.startswith(TABLE_PREFIXES)), "")
        kind = f"{head} {table}".strip()
        counts[kind] += 1
        seconds[kind] += float(query.get("time") or 0)
    return counts, seconds


def report(
    title: str, profile: cProfile.Profile, elapsed: float, units: int, queries, top: int
) -> None:
    print(
        f"\n=== {title}: {units} in {elapsed:.2f} s = {units / elapsed:,.1f}/s "
        f"({elapsed / units * 1000:.2f} ms each)"
    )
    if queries is not None:
        counts, seconds = statement_kinds(queries)
        print(f"SQL statements per unit: {len(queries) / units:.2f} (per unit: count, ms)")
        for kind, count in counts.most_common(12):
            print(f"  {count / units:6.2f} {seconds[kind] / units * 1000:8.3f} ms  {kind}")
    stats = pstats.Stats(profile)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(max(top // 2, 10))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/portal")
    parser.add_argument("--requests", type=int, default=500, help="0: skip the API")
    parser.add_argument("--messages", type=int, default=2000, help="0: skip the engine")
    parser.add_argument(
        "--receipts", type=int, default=0, help="also profile this many signed receipts"
    )
    parser.add_argument(
        "--events", type=int, default=0, help="also profile this many intents with an endpoint"
    )
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--pyinstrument",
        action="store_true",
        help="profile the API pass with pyinstrument (a call tree) instead of cProfile",
    )
    parser.add_argument(
        "--quota-sizes",
        default="1000,20000,100000",
        help="open-intent counts at which to time the quota query ('' to skip)",
    )
    parser.add_argument(
        "--open-intents", type=int, default=20_000, help="open intents for the quota pass"
    )
    args = parser.parse_args()
    server = Server(args.database_url)
    try:
        server.check()
    except BenchError as exc:
        print(f"profile: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench_") as tmp:
        bench = Bench(parse_args(["--database-url", args.database_url]), server, Path(tmp))
        try:
            bench.prepare_template()
            dbname = bench.database("profile", template=bench.template)
            os.environ.update(bench.env(dbname))
            if args.events:  # as the events section's processes (bench/events.py)
                from bench import events

                os.environ.update(events.engine_env())
            from bench import receipts

            os.environ["GATEWAY_SIMULATOR_RECEIPT_SECRET"] = receipts.RECEIPT_SECRET
            import django

            django.setup()
            if args.receipts:
                profile_receipts(bench, dbname, args)
            if args.requests:
                profile_api(bench, args)
            if args.messages:
                profile_engine(bench, dbname, args)
            if args.events:
                profile_events(bench, dbname, args)
            if args.quota_sizes:
                sizes = [int(n) for n in args.quota_sizes.split(",") if n]
                quota_scaling(bench, sizes, cap=100_000)
        finally:
            from django.db import connections

            bench.children.stop_all()
            connections.close_all()
            bench.drop_databases()
    return 0


def profile_api(bench: Bench, args: argparse.Namespace) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Bearer {bench.api_key}", HTTP_HOST="127.0.0.1")

    def post(i: int) -> None:
        response = client.post(
            "/api/v1/intents",
            data={"target": "sms.otp", "payload": {"to": f"+1555{i:07d}", "text": "bench"}},
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
        )
        assert response.status_code == 201, response.content

    for i in range(50):  # warm caches, imports, the connection
        post(i)
    api_phases(bench, post, args.requests, label="few open intents", first=100_000)
    if args.pyinstrument:
        pyinstrument_api(post, args.requests)
        return
    profile = cProfile.Profile()
    with CaptureQueriesContext(connection) as captured:
        t0 = time.perf_counter()
        profile.enable()
        for i in range(args.requests):
            post(1000 + i)
        profile.disable()
        elapsed = time.perf_counter() - t0
    report(
        "API POST /api/v1/intents (profiled, few open intents)",
        profile,
        elapsed,
        args.requests,
        captured.captured_queries,
        args.top,
    )
    # The open-intent quota check reads every open intent of the tenant: show its growth.
    from django.db import connections

    connection.close()
    with bench.server.connect(connections["default"].settings_dict["NAME"]) as conn:
        insert_intents(conn, tenant_id=bench.tenant_id, count=args.open_intents, prefix="o-")
        conn.commit()
        conn.execute("ANALYZE intents_intent")
    api_phases(
        bench, post, args.requests, label=f"+{args.open_intents:,} open intents", first=200_000
    )


def profile_receipts(bench: Bench, dbname: str, args: argparse.Namespace) -> None:
    """Signed simulator receipts through the test client, as the ``receipts`` section."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench import receipts
    from bench.load import Load

    count = args.receipts + 50
    with bench.server.connect(dbname, autocommit=True) as conn:
        conn.execute(
            receipts.INSERT_ACCEPTED,
            {
                "count": count,
                "prefix": receipts.PREFIX,
                "connection": receipts.CONNECTION,
                "tenant_id": bench.tenant_id,
            },
        )
        conn.execute("VACUUM (ANALYZE) intents_intent")
    load = Load(
        argparse.Namespace(
            url="http://127.0.0.1/", api_key="", concurrency=1, warmup=0, duration=0,
            requests=0, receipts_secret=receipts.RECEIPT_SECRET, receipt_messages=count,
            receipt_prefix=receipts.PREFIX,
        )
    )  # fmt: skip
    client = Client(HTTP_HOST="127.0.0.1")

    def post() -> None:
        body, headers = load.receipt()
        headers.pop("Content-Type")
        response = client.post(
            f"/hooks/receipts/{receipts.CONNECTION}",
            data=body,
            content_type="application/json",
            headers=headers,
        )
        assert response.status_code == 202 and b'"applied": 1' in response.content, response.content

    for _ in range(50):
        post()
    profile = cProfile.Profile()
    with CaptureQueriesContext(connection) as captured:
        t0 = time.perf_counter()
        profile.enable()
        for _ in range(args.receipts):
            post()
        profile.disable()
        elapsed = time.perf_counter() - t0
    report(
        "POST /hooks/receipts/simulator-sms (profiled)",
        profile,
        elapsed,
        args.receipts,
        captured.captured_queries,
        args.top,
    )


def pyinstrument_api(post, requests: int) -> None:
    """A sampled call tree of ``requests`` posts: where the time goes, with less distortion
    than cProfile's per-call cost (the dev extra's pyinstrument)."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005)
    profiler.start()
    for i in range(requests):
        post(300_000 + i)
    profiler.stop()
    print("\n=== API POST /api/v1/intents (pyinstrument, few open intents)")
    print(profiler.output_text(unicode=False, color=False, show_all=False))


QUOTA_SQL = """
EXPLAIN (ANALYZE, FORMAT JSON)
SELECT 1 FROM (
    SELECT id FROM intents_intent
    WHERE status IN ('pending', 'in_flight') AND tenant_id = %(tenant)s
    LIMIT 1 OFFSET %(offset)s
) AS subquery LIMIT 1
"""


def quota_scaling(bench: Bench, sizes: list[int], cap: int) -> None:
    """The open-intent quota query (as ``open_intent_count_reaches`` sends it) by backlog."""
    print(f"\n=== open-intent quota check (OFFSET cap - 1, cap {cap:,}) by open intents")
    dbname = bench.database("quota", template=bench.template)
    with bench.server.connect(dbname) as conn:
        have = 0
        for size in sorted(sizes):
            insert_intents(
                conn,
                tenant_id=bench.tenant_id,
                count=size - have,
                prefix=f"q{size}-",
                start=have + 1,
            )
            have = size
            conn.commit()
            conn.execute("ANALYZE intents_intent")
            conn.commit()
            runs = []
            for _ in range(3):
                plan = scalar(conn, QUOTA_SQL, {"tenant": bench.tenant_id, "offset": cap - 1})
                runs.append(plan[0]["Execution Time"])
            conn.commit()
            print(f"  {size:>9,} open intents: {min(runs):8.2f} ms (best of 3)")


class PhaseTimer:
    """Wall time spent inside chosen functions (no profiler, so no profiler overhead)."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.patched: list[tuple[object, str, object]] = []

    def wrap(self, owner: object, name: str, label: str) -> None:
        original = getattr(owner, name)

        def timed(*a, **kw):
            t0 = time.perf_counter()
            try:
                return original(*a, **kw)
            finally:
                self.seconds[label] += time.perf_counter() - t0

        self.patched.append((owner, name, original))
        setattr(owner, name, timed)

    def restore(self) -> None:
        for owner, name, original in reversed(self.patched):
            setattr(owner, name, original)


def api_phases(bench: Bench, post, requests: int, *, label: str, first: int) -> None:
    from intents import api, services
    from intents.models import Intent
    from intents.serializers import IntentCreateInputSerializer
    from portal.accounts.authentication import ApiKeyAuthentication

    timer = PhaseTimer()
    timer.wrap(ApiKeyAuthentication, "authenticate", "authenticate (key lookup, last used)")
    timer.wrap(IntentCreateInputSerializer, "is_valid", "input serializer")
    timer.wrap(api, "intent_submit", "intent_submit")
    timer.wrap(services, "intent_by_idempotency_key", "  idempotency lookup")
    timer.wrap(services, "_resolve_target", "  resolve target")
    timer.wrap(services, "payload_errors", "  payload JSON Schema")
    timer.wrap(services, "_store", "  intake transaction (BEGIN … COMMIT)")
    timer.wrap(services, "rate_window_hit", "    rate limit (UPDATE window row)")
    timer.wrap(services, "open_intent_count_reaches", "    open-intent quota check")
    timer.wrap(Intent, "save", "    INSERT")
    timer.wrap(api, "_intent_data", "output serializer")
    t0 = time.perf_counter()
    for i in range(requests):
        post(first + i)
    total = time.perf_counter() - t0
    timer.restore()
    print(
        f"\n=== API phases without the profiler ({label}): {requests} requests, "
        f"{total / requests * 1000:.2f} ms each, 1 thread, in-process"
    )
    for name, seconds in timer.seconds.items():
        print(f"  {seconds / requests * 1000:7.3f} ms  {seconds / total:6.1%}  {name}")
    rest = total - sum(v for k, v in timer.seconds.items() if not k.startswith(" "))
    print(
        f"  {rest / requests * 1000:7.3f} ms  {rest / total:6.1%}  the rest: middleware, "
        "DRF dispatch, routing, rendering, test client"
    )


def profile_engine(bench: Bench, dbname: str, args: argparse.Namespace) -> None:
    def seed(prefix: str) -> None:
        with bench.server.connect(dbname) as conn:
            conn.execute("DELETE FROM intents_attempt")
            conn.execute("DELETE FROM intents_intent")
            insert_intents(conn, tenant_id=bench.tenant_id, count=args.messages, prefix=prefix)
            conn.commit()

    profile_drain(seed, n=args.messages, top=args.top, what="messages")


def drain() -> None:
    """Claim and execute inline until nothing is due (new deliveries included)."""
    from intents import dispatch

    dispatcher = dispatch.Dispatcher(batch_size=100, inline=True, sweep_interval_s=1e9)
    while dispatcher.claim_and_hand_off():
        pass


def profile_drain(seed, *, n: int, top: int, what: str, wraps=()) -> None:
    """Phases without the profiler, then the same under cProfile with its SQL."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from gateways import registry
    from intents import dispatch, execution
    from intents.models import Attempt

    # Pass 1: phases, timed without the profiler.
    seed("t-")
    timer = PhaseTimer()
    for owner, name, label in wraps:
        timer.wrap(owner, name, label)
    timer.wrap(dispatch, "claim_from", "claim (due tenants, select for update + lease)")
    timer.wrap(execution, "record_outcomes", "record (lock, decide, bulk write)")
    timer.wrap(execution, "_save", "  of which _save (intent UPDATEs + attempt INSERT)")
    timer.wrap(execution, "_write_states", "    of which _write_states (executemany UPDATE)")
    timer.wrap(Attempt.objects, "bulk_create", "    of which Attempt bulk_create")
    timer.wrap(registry, "new_http_client", "gateway session: new httpx client")
    timer.wrap(asyncio, "run", "gateway calls (asyncio.run incl. session)")
    t0 = time.perf_counter()
    drain()
    total = time.perf_counter() - t0
    timer.restore()
    print(
        f"\n=== engine phases without the profiler (inline, 1 process): {n} {what} in "
        f"{total:.2f} s = {n / total:,.1f}/s"
    )
    for label, seconds in timer.seconds.items():
        print(f"  {seconds / n * 1000:7.3f} ms/msg  {seconds / total:6.1%}  {label}")

    # Pass 2: the same under cProfile, with the SQL it sends.
    seed("p-")
    profile = cProfile.Profile()
    with CaptureQueriesContext(connection) as captured:
        t0 = time.perf_counter()
        profile.enable()
        drain()
        profile.disable()
        elapsed = time.perf_counter() - t0
    report(
        f"engine claim + execute + record (inline, 1 process, profiled; per {what[:-1]})",
        profile,
        elapsed,
        n,
        captured.captured_queries,
        top,
    )


def profile_events(bench: Bench, dbname: str, args: argparse.Namespace) -> None:
    """The engine over ``args.events`` intents of a tenant with one ``intent.accepted``
    endpoint: each accepted intent writes an event whose delivery the same drain sends."""
    from bench.events import EVENT_TYPE
    from bench.procs import PY, wait_until
    from bench.run import free_port, http_answers
    from gateways.providers.webhook import WebhookEndpointProvider
    from portal.accounts.models import Tenant
    from portal.audit.services import Actor
    from portal.events import receivers, services

    port = free_port()
    services.webhook_endpoint_create(
        tenant=Tenant.objects.get(pk=bench.tenant_id),
        url=f"http://127.0.0.1:{port}/hooks/portal",
        event_types=[EVENT_TYPE],
        actor=Actor.system("bench"),
    )
    argv = [PY, "-m", "bench.provider_peers", "events", "--port", str(port)]
    bench.children.start("peer_events", argv, dict(os.environ))
    wait_until(lambda: http_answers(port), timeout=60, what="the event receiver")

    def seed(prefix: str) -> None:
        with bench.server.connect(dbname) as conn:
            for table in ("events_webhookevent", "intents_attempt", "intents_intent"):
                conn.execute(f"DELETE FROM {table}")
            insert_intents(conn, tenant_id=bench.tenant_id, count=args.events, prefix=prefix)
            conn.commit()

    wraps = [  # where the receivers call them (each imported its own name)
        (receivers, "events_write_for_changes", "outbox: events + deliveries written"),
        (receivers, "endpoints_record_attempts", "endpoint health recorded"),
        (WebhookEndpointProvider, "_pinned", "webhook_endpoint: resolve + check address"),
        (WebhookEndpointProvider, "_signed_headers", "webhook_endpoint: sign"),
    ]
    profile_drain(seed, n=args.events, top=args.top, what="intents", wraps=wraps)


if __name__ == "__main__":
    sys.exit(main())
