"""``make bench``: the engine's and the API's throughput next to their raw floors.

    .venv/bin/python bench/run.py --database-url postgres://postgres@127.0.0.1:5432/portal

Two measurements on PostgreSQL, each with its floor measured in the same run:

1. Engine: ``--messages`` pending intents delivered through the real processes
   (``manage.py run_dispatcher`` + ``manage.py qcluster`` with 2 workers, ORM broker)
   to an in-process gateway that accepts at once, against a raw psycopg loop in 2
   processes making the same writes per message (``bench/engine_floor.py``).
2. API: sustained ``POST /api/v1/intents`` under gunicorn (2 workers x 4 threads)
   from a load generator in another process (``bench/load.py``), against a bare
   Django view doing the same INSERT (``bench/floor_urls.py``) under the same gunicorn.

Then issue 2's further engine figures (``bench/engine_extra.py``), each with a
``--skip-…`` option: the product engine's throughput with 50 ms of gateway latency
(``--latency-messages``, against the no-latency figure and the one-attempt-at-a-time
bound), the cost of one ``claim_batch`` with 10,000 and ``--claim-backlog`` intents not
yet due, and the lateness of intents falling due at ``--lateness-rate`` per second.

Prints a table and writes it to ``bench/results/<timestamp>.json``. A benchmark, not a
test: it asserts nothing about speed. Every ``bench_*`` database and child process it
makes is removed on exit, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import from the checkout, not bench/
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench import delivery_figures, engine_extra, intake_growth, scale_figures
from bench.pg import (
    SMS_PAYLOAD,
    BenchError,
    Server,
    db_clock,
    insert_intents,
    row,
    scalar,
    tenant_id,
)
from bench.procs import PY, ROOT, Children, run_checked, wait_until
from portal.cli import positive

RESULTS_DIR = ROOT / "bench" / "results"
TENANT = "bench"
ENGINE_TARGET_RATIO = 0.5
API_TARGET_RATIO = 0.6
WARMUP_MESSAGES = 300
TERMINAL = ("accepted", "failed", "exhausted", "expired", "cancelled")
# Internal intents (webhook event deliveries) made after the release (epoch seconds).
INTERNAL_STATS = """
SELECT count(*), count(*) FILTER (WHERE status = 'accepted'),
       count(*) FILTER (WHERE status = ANY(%(terminal)s)), extract(epoch FROM max(finished_at))
FROM intents_intent WHERE internal AND created_at >= to_timestamp(%(released)s)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            return sock.recv(12).startswith(b"HTTP/")
    except OSError:
        return False


class Bench:
    def __init__(self, args: argparse.Namespace, server: Server, work_dir: Path) -> None:
        self.args = args
        self.server = server
        self.work_dir = work_dir
        self.children = Children(work_dir)
        self.run_id = f"{os.getpid()}_{int(time.time())}"
        self.databases: list[str] = []
        self.template = ""
        self.api_key = ""
        self.tenant_id = 0

    # --- databases
    def database(self, kind: str, *, template: str | None = None) -> str:
        name = f"bench_{kind}_{self.run_id}"
        self.databases.append(name)
        self.server.create_database(name, template=template)
        return name

    def drop_database(self, name: str) -> None:
        """Drop one database now (a big one should not wait for the end of the run)."""
        self.server.drop_database(name)
        if name in self.databases:
            self.databases.remove(name)

    def drop_databases(self) -> None:
        for name in reversed(self.databases):
            try:
                self.server.drop_database(name)
            except Exception as exc:  # keep dropping the others
                print(f"bench: could not drop {name}: {exc}", file=sys.stderr)
        self.databases.clear()

    def env(self, dbname: str, settings: str = "bench.settings", **extra: str) -> dict[str, str]:
        prometheus = self.work_dir / f"prometheus_{dbname}"
        prometheus.mkdir(exist_ok=True)
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": settings,
            "DATABASE_URL": self.server.url_for(dbname),
            "PROMETHEUS_MULTIPROC_DIR": str(prometheus),
            "PYTHONUNBUFFERED": "1",
            "LOG_JSON": "0",
            **extra,
        }

    def prepare_template(self) -> None:
        """Migrate once, sync the real targets, make the tenant and its key."""
        self.template = self.database("template")
        env = self.env(self.template)
        manage = [PY, "manage.py"]
        run_checked([*manage, "migrate", "--no-input", "-v0"], env, what="migrate")
        run_checked([*manage, "sync_targets"], env, what="sync_targets")
        run_checked([*manage, "create_tenant", TENANT], env, what="create_tenant")
        out = run_checked(
            [*manage, "create_api_key", "--tenant", TENANT], env, what="create_api_key"
        )
        self.api_key = out.strip().splitlines()[-1]
        with self.server.connect(self.template) as conn:
            self.tenant_id = tenant_id(conn, TENANT)

    # --- engine
    def engine(
        self,
        kind: str,
        start_processes,
        *,
        messages: int | None = None,
        template: str | None = None,
        target: str = "sms.otp",
        payload: str = SMS_PAYLOAD,
        deliveries: bool = False,
    ) -> dict:
        """Seed, release ``messages`` intents at once, time them to the last terminal.

        ``template`` (default: the bench's) is the database copied; ``target`` and
        ``payload`` (a SQL expression, ``bench.pg.insert_intents``) what is seeded.
        ``deliveries``: the internal intents (webhook event deliveries) made after the
        release count too: timed to the last of them, and counted apart."""
        dbname = self.database(kind, template=template or self.template)
        names = start_processes(dbname)
        n = messages or self.args.messages
        seed: dict[str, Any] = {"tenant_id": self.tenant_id, "target": target, "payload": payload}
        with self.server.connect(dbname, autocommit=True) as conn:
            self.warm_up(conn, names, what=f"{kind} warm-up", **seed)
            with conn.transaction():
                insert_intents(conn, count=n, prefix="m-", **seed)
            released = db_clock(conn)  # the backlog became visible (due) at this commit
            cpu_before = self.children.cpu_seconds(*names)
            timeout = max(120.0, n / 20)
            progress: list[tuple[float, int]] = []
            drained = self.wait_drained(
                conn, names, timeout=timeout, what=kind, strict=False, progress=progress
            )
            stats = row(
                conn,
                """
                SELECT count(*) FILTER (WHERE status = 'accepted'),
                       count(*) FILTER (WHERE status = ANY(%(terminal)s)),
                       extract(epoch FROM max(finished_at))
                FROM intents_intent WHERE idempotency_key LIKE %(measured)s
                """,
                {"terminal": list(TERMINAL), "measured": "m-%"},
            )
            first_attempt, attempts = row(
                conn,
                """
                SELECT extract(epoch FROM min(a.started_at)), count(*)
                FROM intents_attempt AS a JOIN intents_intent AS i ON i.id = a.intent_id
                WHERE i.idempotency_key LIKE %s
                """,
                ("m-%",),
            )
            internal = (
                row(conn, INTERNAL_STATS, {"terminal": list(TERMINAL), "released": released})
                if deliveries
                else None
            )
            elapsed_to_now = db_clock(conn) - released
        cpu = self.children.cpu_seconds(*names) - cpu_before
        self.children.stop(*names)
        accepted, terminal, last_finished = stats
        extra: dict[str, Any] = {}
        if internal is not None:
            keys = ("deliveries", "deliveries_accepted", "deliveries_terminal")
            extra = dict(zip(keys, internal[:3], strict=True))
            if internal[3] is not None:
                last_finished = max(float(last_finished), float(internal[3]))
        elapsed = (float(last_finished) - released) if drained else elapsed_to_now
        return {
            **extra,
            "messages": n,
            "accepted": accepted,
            "terminal": terminal,
            "attempts": attempts,
            "completed": bool(drained),
            "seconds": round(elapsed, 3),
            "first_attempt_after_s": (
                round(float(first_attempt) - released, 3) if first_attempt else None
            ),
            "messages_per_s": terminal / elapsed if elapsed > 0 else 0.0,
            # CPU of the processes under test (not PostgreSQL's): steadier than wall time
            # on a shared machine.
            "cpu_ms_per_message": cpu * 1000 / terminal if terminal else None,
            "open_intents_over_time": progress,
        }

    def warm_up(self, conn, names: list[str], *, what: str, **seed) -> None:
        """The processes import, connect and prove they run before anything is timed.

        ``seed``: ``insert_intents`` arguments (default: the bench tenant's ``sms.otp``)."""
        seed.setdefault("tenant_id", self.tenant_id)
        with conn.transaction():
            insert_intents(conn, count=WARMUP_MESSAGES, prefix="w-", **seed)
        self.wait_drained(conn, names, timeout=120, what=what)

    def wait_drained(
        self,
        conn,
        names,
        *,
        timeout: float,
        what: str,
        strict: bool = True,
        progress: list | None = None,
    ):
        t0 = time.monotonic()

        def drained() -> bool:
            self.children.check_alive(*names)
            left = scalar(
                conn, "SELECT count(*) FROM intents_intent WHERE status IN ('pending', 'in_flight')"
            )
            if progress is not None:  # (seconds, open intents): shows a slowdown over a run
                elapsed = round(time.monotonic() - t0, 1)
                if not progress or elapsed - progress[-1][0] >= 5 or left == 0:
                    progress.append((elapsed, left))
            return left == 0

        try:
            return wait_until(drained, timeout=timeout, what=what, interval=0.2)
        except BenchError:
            if strict:
                raise
            return False

    def start_product_engine(self, dbname: str, **extra_env: str) -> list[str]:
        env = self.env(dbname, Q_WORKERS="2", **extra_env)
        self.children.start("qcluster", [PY, "manage.py", "qcluster"], env)
        self.children.start("dispatcher", [PY, "manage.py", "run_dispatcher"], env)
        return ["qcluster", "dispatcher"]

    def start_floor_engine(self, dbname: str, *, per_message: bool = False) -> list[str]:
        env = self.env(dbname)
        names = []
        for i in (1, 2):
            name = f"engine_floor_{i}"
            argv = [PY, "-m", "bench.engine_floor", self.server.conninfo(dbname)]
            if per_message:
                argv.append("--per-message")
            self.children.start(name, [*argv, "--tenant-id", str(self.tenant_id)], env)
            names.append(name)
        return names

    # --- API
    def api(
        self,
        kind: str,
        settings: str,
        *,
        api_key: str,
        seed=None,
        path: str = "/api/v1/intents",
        load_args: tuple[str, ...] = (),
        **extra_env: str,
    ) -> dict:
        """``seed(dbname)`` (optional) fills the fresh database first and returns seconds;
        ``path``, ``load_args`` and ``extra_env`` point the load elsewhere (receipts)."""
        dbname = self.database(kind, template=self.template)
        seed_seconds = seed(dbname) if seed is not None else None
        port = free_port()
        env = self.env(dbname, settings, BENCH_TENANT_ID=str(self.tenant_id), **extra_env)
        gunicorn = str(Path(PY).with_name("gunicorn"))
        argv = [
            gunicorn, "portal.wsgi", "--bind", f"127.0.0.1:{port}",
            "--workers", "2", "--threads", str(self.args.threads), "--worker-class", "gthread",
            "--keep-alive", "30", "--log-level", "warning",
        ]  # fmt: skip
        name = f"gunicorn_{kind}"
        self.children.start(name, argv, env)

        def listening() -> bool:
            self.children.check_alive(name)  # a gunicorn that died fails the run at once
            return http_answers(port)

        wait_until(listening, timeout=60, what=f"gunicorn ({kind})")
        load_argv = [
            PY, "-m", "bench.load", "--url", f"http://127.0.0.1:{port}{path}",
            "--api-key", api_key, "--concurrency", str(self.args.concurrency),
            "--warmup", str(self.args.warmup), "--duration", str(self.args.duration),
            "--requests", str(self.args.requests), *load_args,
        ]  # fmt: skip
        cpu_before = self.children.cpu_seconds(name)
        out = run_checked(load_argv, env, what=f"load generator ({kind})")
        self.children.check_alive(name)
        cpu = self.children.cpu_seconds(name) - cpu_before
        self.children.stop(name)
        result = json.loads(out.strip().splitlines()[-1])
        # gunicorn's CPU (master + workers; not PostgreSQL's) per request it answered.
        answered = result["requests_total"]
        result["server_cpu_ms_per_request"] = cpu * 1000 / answered if answered else None
        with self.server.connect(dbname) as conn:
            result["rows_inserted"] = scalar(conn, "SELECT count(*) FROM intents_intent")
            if path.startswith("/hooks/receipts/"):
                result["receipt_rows"] = scalar(conn, "SELECT count(*) FROM intents_receipt")
        result["seed_seconds"] = seed_seconds
        if seed is not None:  # a big seeded database should not wait for the end of the run
            self.drop_database(dbname)
        return result


def ratio(product: float, floor: float) -> float | None:
    return product / floor if floor else None


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def render(results: dict) -> str:
    machine = results["machine"]
    lines = [
        f"Submission Portal bench — {results['started_at']}",
        f"machine: {machine['cpus']} CPUs, {machine['platform']}, Python {machine['python']}, "
        f"PostgreSQL {machine['postgresql']}",
        f"code: {results['code']['commit']}{' + uncommitted changes' if results['code']['dirty'] else ''}",
        "",
        f"{'measurement':<34}{'product':>12}{'floor':>12}{'ratio':>8}{'target':>9}",
        "-" * 75,
    ]
    engine = results.get("engine")
    if engine:
        p, f = engine["product"], engine["floor"]
        r = engine["ratio"]
        lines.append(
            f"{'engine throughput (msg/s)':<34}{fmt(p['messages_per_s']):>12}"
            f"{fmt(f['messages_per_s']):>12}{fmt(r, 2):>8}{'>= ' + str(ENGINE_TARGET_RATIO):>9}"
        )
        if "loop_floor" in engine:
            lines.append(
                f"{'  vs per-message loop floor':<34}{'':>12}"
                f"{fmt(engine['loop_floor']['messages_per_s']):>12}"
                f"{fmt(engine['loop_ratio'], 2):>8}"
            )
        lines.append(
            f"{'  seconds for ' + format(p['messages'], ',') + ' messages':<34}"
            f"{fmt(p['seconds'], 2):>12}{fmt(f['seconds'], 2):>12}"
        )
        cpu_p, cpu_f = p["cpu_ms_per_message"], f["cpu_ms_per_message"]
        lines.append(
            f"{'  CPU ms per message (processes)':<34}{fmt(cpu_p, 3):>12}{fmt(cpu_f, 3):>12}"
            f"{fmt(ratio(cpu_f, cpu_p) if cpu_p else None, 2):>8}"
        )
    api = results.get("api")
    if api:
        p, f = api["product"], api["floor"]
        lines.append(
            f"{'API intake (requests/s)':<34}{fmt(p['requests_per_s']):>12}"
            f"{fmt(f['requests_per_s']):>12}{fmt(api['ratio'], 2):>8}"
            f"{'>= ' + str(API_TARGET_RATIO):>9}"
        )
        if "middleware_floor" in api:
            lines.append(
                f"{'  vs floor behind the middleware':<34}{'':>12}"
                f"{fmt(api['middleware_floor']['requests_per_s']):>12}"
                f"{fmt(api['middleware_ratio'], 2):>8}"
            )
        for key, label in (("p50_ms", "  latency p50 (ms)"), ("p99_ms", "  latency p99 (ms)")):
            lines.append(f"{label:<34}{fmt(p[key], 2):>12}{fmt(f[key], 2):>12}")
        cpu_p, cpu_f = p["server_cpu_ms_per_request"], f["server_cpu_ms_per_request"]
        lines.append(
            f"{'  server CPU ms per request':<34}{fmt(cpu_p, 2):>12}{fmt(cpu_f, 2):>12}"
            f"{fmt(ratio(cpu_f, cpu_p) if cpu_p else None, 2):>8}"
        )
        lines.append(f"{'  requests counted':<34}{p['requests']:>12,}{f['requests']:>12,}")
        lines.append(
            f"{'  load generator CPU (s)':<34}{fmt(p['client_cpu_s'], 1):>12}"
            f"{fmt(f['client_cpu_s'], 1):>12}"
        )
    lines += render_api_growth(results)
    lines += render_extra(results)
    lines += scale_figures.render(results)
    lines += delivery_figures.render(results)
    notes = results.get("notes") or []
    if notes:
        lines += ["", *[f"note: {n}" for n in notes]]
    return "\n".join(lines)


def render_extra(results: dict) -> list[str]:
    """The second block: issue 2's further engine figures, each against its own baseline."""
    rows: list[str] = []

    def row(label: str, value: str, base: str = "", r: str = "", target: str = "") -> None:
        rows.append(f"{label:<34}{value:>12}{base:>12}{r:>8}{target:>9}")

    lat = results.get("engine_latency")
    if lat:
        ms = format(lat["gateway_latency_s"] * 1000, "g")
        row(
            f"engine at {ms} ms latency (msg/s)",
            fmt(lat["messages_per_s"]),
            fmt(lat["no_latency_messages_per_s"]),
            fmt(lat["ratio_to_no_latency"], 2),
        )
        row(
            f"  vs 1 at a time/worker ({WORKERS_LABEL})",
            "",
            fmt(lat["serial_bound_per_s"]),
            fmt(lat["ratio_to_serial_bound"], 1),
        )
        row(f"  seconds for {lat['messages']:,} messages", fmt(lat["seconds"], 2))
    claim = results.get("claim_scale")
    if claim and claim["runs"]:
        runs = claim["runs"]
        big, small = runs[-1], runs[0]
        two = len(runs) == 2
        row(
            "claim one batch (ms, median)",
            fmt(big["median_ms"], 2),
            fmt(small["median_ms"], 2) if two else "",
            fmt(claim.get("ratio"), 2),
            f"<= {engine_extra.CLAIM_SCALE_TARGET}",
        )
        row(
            f"  p90 of {claim['claims']} claims (ms)",
            fmt(big["p90_ms"], 2),
            fmt(small["p90_ms"], 2) if two else "",
        )
        row(
            "  its SELECT in PostgreSQL (ms)",
            fmt(big["select_server_ms"], 3),
            fmt(small["select_server_ms"], 3) if two else "",
        )
        row(
            f"  not due (+ {claim['due']} due)",
            f"{big['not_due']:,}",
            f"{small['not_due']:,}" if two else "",
        )
    late = results.get("lateness")
    if late:
        row(
            f"lateness at {late['due_per_s']:g} due/s p99 (s)",
            fmt(late["p99_s"], 3),
            "",
            "",
            f"< {engine_extra.LATENESS_P99_TARGET_S:g}",
        )
        row("  p50 / max (s)", fmt(late["p50_s"], 3), fmt(late["max_s"], 3))
    if rows:
        rows = [
            "",
            f"{'further engine figures':<34}{'value':>12}{'baseline':>12}{'ratio':>8}{'target':>9}",
            "-" * 75,
            *rows,
        ]
    return rows


WORKERS_LABEL = f"{engine_extra.WORKERS}/{engine_extra.LATENCY_S:g} s"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Engine and API figures with their ratio to raw floors (PostgreSQL)."
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/portal"),
        help="a PostgreSQL server on loopback; its database name is unused",
    )
    count, seconds = positive(int), positive(float)
    options = [  # (flag, type, default, help)
        ("--messages", count, 20_000, "engine messages"),
        ("--duration", seconds, 20.0, "seconds of API load each"),
        ("--warmup", float, 3.0, "API warm-up seconds, uncounted"),
        ("--concurrency", count, 8, "API client threads"),
        ("--threads", count, 4, "gunicorn threads per worker"),
    ]
    further = [  # issue 2's further engine figures
        ("--latency-messages", count, 5_000, "engine messages at 50 ms latency"),
        ("--claim-backlog", count, 1_000_000, "not-due intents, the big case"),
        ("--claim-due", count, 100, "due intents (= batch size)"),
        ("--claims", count, 50, "timed claims per backlog"),
        ("--lateness-rate", seconds, 200.0, "intents due per s"),
        ("--lateness-seconds", seconds, 20.0, "seconds of them"),
    ]
    parser.add_argument(
        "--requests", type=int, default=0, help="stop each API run after this many (0: --duration)"
    )
    extra = parser.add_argument_group("further engine figures (issue 2)")
    for group, rows in ((parser, options), (extra, further)):
        for flag, kind, default, help_ in rows:
            group.add_argument(flag, type=kind, default=default, help=help_)
    for flag in ("--skip-engine", "--skip-api"):
        parser.add_argument(flag, action="store_true")
    for flag in ("--skip-latency", "--skip-claim-scale", "--skip-lateness"):
        extra.add_argument(flag, action="store_true")
    add_only_option(parser)
    scale_figures.add_arguments(parser)
    delivery_figures.add_arguments(parser)
    args = parser.parse_args(argv)
    apply_only(parser, args)
    if args.requests < 0 or args.warmup < 0:
        parser.error("--requests and --warmup must not be negative")
    return args


# --only NAME,…: the sections to run, each named by its --skip-NAME flag.
SECTIONS = (
    "engine",
    "latency",
    "api",
    "api-growth",
    "lateness",
    "claim-scale",
    "claim-tenants",
    "peers",
    "memory",
    "providers",
    "receipts",
    "events",
)


def add_only_option(parser: argparse.ArgumentParser) -> None:
    growth = parser.add_argument_group("intake cost growth (issue 13 item 5)")
    growth.add_argument("--skip-api-growth", action="store_true")
    growth.add_argument(
        "--growth-sizes",
        default=",".join(str(n) for n in intake_growth.DEFAULT_SIZES),
        help="intents stored before each API run, comma-separated (first: the baseline)",
    )
    parser.add_argument(
        "--only",
        default="",
        metavar="SECTIONS",
        help=f"run only these sections, comma-separated, from: {', '.join(SECTIONS)}",
    )


def apply_only(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``--only api`` is ``--skip-`` every other section."""
    if not args.only:
        return
    chosen = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = chosen - set(SECTIONS)
    if unknown:
        parser.error(f"--only: unknown section(s) {', '.join(sorted(unknown))}; use {SECTIONS}")
    for name in SECTIONS:
        if name not in chosen:
            setattr(args, "skip_" + name.replace("-", "_"), True)


def code_version() -> dict:
    """The commit measured, and whether the checkout had uncommitted changes (read-only git)."""

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain")),
    }


def run(args: argparse.Namespace, server: Server, version: str, work_dir: Path) -> dict:
    started = dt.datetime.now(dt.UTC)
    results: dict = {
        "started_at": started.isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(terse=True),
            "python": platform.python_version(),
            "postgresql": version,
        },
        "code": code_version(),
        "options": {k: v for k, v in vars(args).items() if k != "database_url"},
        "notes": [],
    }
    bench = Bench(args, server, work_dir)
    try:
        print("preparing the bench database (migrate, sync_targets, tenant, key)...", flush=True)
        bench.prepare_template()
        if not args.skip_engine:
            print(f"engine: product, {args.messages:,} messages...", flush=True)
            product = bench.engine("engine", bench.start_product_engine)
            print(f"engine: floor, {args.messages:,} messages...", flush=True)
            floor = bench.engine("enginefloor", bench.start_floor_engine)
            print(f"engine: per-message loop floor, {args.messages:,} messages...", flush=True)
            loop_floor = bench.engine(
                "engineloop", lambda db: bench.start_floor_engine(db, per_message=True)
            )
            results["engine"] = {
                "product": product,
                "floor": floor,
                "ratio": ratio(product["messages_per_s"], floor["messages_per_s"]),
                "loop_floor": loop_floor,
                "loop_ratio": ratio(product["messages_per_s"], loop_floor["messages_per_s"]),
            }
            for label, r in (("product", product), ("floor", floor), ("loop floor", loop_floor)):
                if (
                    not r["completed"]
                    or r["messages"] != r["accepted"]
                    or (r["messages"] != r["attempts"])
                ):
                    results["notes"].append(
                        f"engine {label}: {r['accepted']:,} of {r['messages']:,} accepted, "
                        f"{r['terminal']:,} terminal, {r['attempts']:,} attempts when timed"
                    )
        run_latency(args, bench, results)
        if not args.skip_api:
            print(f"API: product, {args.duration:g} s of load...", flush=True)
            product = bench.api("api", "bench.settings", api_key=bench.api_key)
            print(f"API: floor, {args.duration:g} s of load...", flush=True)
            floor = bench.api("apifloor", "bench.floor_settings", api_key="")
            print(f"API: floor behind the middleware, {args.duration:g} s of load...", flush=True)
            mw_floor = bench.api("apifloormw", "bench.floor_mw_settings", api_key="")
            results["api"] = {
                "product": product,
                "floor": floor,
                "ratio": ratio(product["requests_per_s"], floor["requests_per_s"]),
                "middleware_floor": mw_floor,
                "middleware_ratio": ratio(product["requests_per_s"], mw_floor["requests_per_s"]),
            }
            for label, r in (("product", product), ("floor", floor), ("mw floor", mw_floor)):
                bad = {k: v for k, v in r["statuses"].items() if k not in ("200", "201")}
                if bad or r["errors"]:
                    results["notes"].append(
                        f"API {label}: non-2xx {bad} errors {r['errors']} {r['first_error']}"
                    )
        run_api_growth(args, bench, results)
        run_extra(args, bench, results)
        scale_figures.run(args, bench, results)
        delivery_figures.run(args, bench, results)
    finally:
        bench.children.stop_all()
        bench.drop_databases()
    return results


def say(text: str) -> None:
    print(text, flush=True)  # progress lines show as they happen, also through make


def note_shortfall(results: dict, label: str, r: dict) -> None:
    """A run that did not deliver every message is reported, never silently averaged."""
    if not r["completed"] or r["accepted"] != r["messages"]:
        results["notes"].append(
            f"{label}: {r['accepted']:,} of {r['messages']:,} accepted, "
            f"{r.get('attempts', r.get('first_attempts', 0)):,} attempts when timed"
        )


def run_latency(args: argparse.Namespace, bench: Bench, results: dict) -> None:
    """The product engine again with 50 ms of gateway latency, right after the engine runs."""
    if not args.skip_latency:
        say(
            f"engine: product with {engine_extra.LATENCY_S * 1000:g} ms gateway latency, "
            f"{args.latency_messages:,} messages..."
        )
        r = engine_extra.latency(bench, messages=args.latency_messages)
        base = (results.get("engine") or {}).get("product")
        r["no_latency_messages_per_s"] = base["messages_per_s"] if base else None
        r["ratio_to_no_latency"] = (
            ratio(r["messages_per_s"], base["messages_per_s"]) if base else None
        )
        r["ratio_to_serial_bound"] = ratio(r["messages_per_s"], r["serial_bound_per_s"])
        results["engine_latency"] = r
        note_shortfall(results, "engine at latency", r)


def run_api_growth(args: argparse.Namespace, bench: Bench, results: dict) -> None:
    """Issue 13 item 5: API p99 with intents already stored, and bytes per row."""
    if args.skip_api_growth:
        return
    sizes = tuple(int(n) for n in args.growth_sizes.split(",") if n.strip())
    r = intake_growth.growth(bench, sizes=sizes)
    results["api_growth"] = r
    for run_ in r["runs"]:
        bad = {k: v for k, v in run_["statuses"].items() if k not in ("200", "201")}
        if bad or run_["errors"]:
            results["notes"].append(
                f"API growth {run_['stored']:,}: non-2xx {bad} errors {run_['errors']}"
            )


def render_api_growth(results: dict) -> list[str]:
    growth = results.get("api_growth")
    if not growth or not growth["runs"]:
        return []
    return [
        "",
        f"{'intake cost growth':<34}{'value':>12}{'baseline':>12}{'ratio':>8}{'target':>9}",
        "-" * 75,
        *intake_growth.render(growth),
    ]


def run_extra(args: argparse.Namespace, bench: Bench, results: dict) -> None:
    """Issue 2's other engine figures: retry lateness, claim cost by not-due backlog."""
    if not args.skip_lateness:
        say(
            f"engine: retry lateness, {args.lateness_rate:g} due/s for {args.lateness_seconds:g} s..."
        )
        r = engine_extra.lateness(bench, rate=args.lateness_rate, seconds=args.lateness_seconds)
        results["lateness"] = r
        note_shortfall(results, "lateness", r)
    if not args.skip_claim_scale:
        say(
            f"engine: claim cost, {args.claim_due} due + "
            f"{engine_extra.CLAIM_SMALL_BACKLOG:,} / {args.claim_backlog:,} not due..."
        )
        r = engine_extra.claim_scale(
            bench, backlog=args.claim_backlog, due=args.claim_due, claims=args.claims
        )
        results["claim_scale"] = r
        for run_ in r["runs"]:
            if run_["claimed"] != args.claim_due:
                results["notes"].append(
                    f"claim with {run_['not_due']:,} not due claimed {run_['claimed']} "
                    f"of {args.claim_due}"
                )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM and SIGHUP unwind like Ctrl-C (also when started with SIGINT ignored, as a
    # background job is), so the finally blocks stop the children and drop the databases.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)
    server = Server(args.database_url)
    try:
        version = server.check()
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    try:
        with tempfile.TemporaryDirectory(prefix="bench_") as tmp:
            results = run(args, server, version, Path(tmp))
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; children stopped and bench_ databases dropped", file=sys.stderr)
        return 130
    table = render(results)
    print()
    print(table)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{stamp}.json"
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
