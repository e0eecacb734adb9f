"""What a user might pick instead, on the same PostgreSQL in the same run (issue 13, item 4).

Each peer executes **bare no-op** tasks (nothing written, nothing sent), while the
product's figure is its full work: claim, gateway call, attempt row, intent update.

* **django-q2, ORM broker**: ``manage.py qcluster`` with the product's ``Q_CLUSTER``
  (2 workers, same poll, ``save_limit`` -1) on a bench database; ``--peer-messages``
  tasks of ``bench.peers.noop`` enqueued in one transaction, timed from its commit until
  the broker's table is empty (a task's row is deleted when its result is acknowledged).
* **django-q2, Redis broker** (``REDIS_URL``, db 14 by default, flushed before and
  after): the same, enqueued in one pipeline, timed until the queue's list is empty
  (Redis keeps no acknowledgement: the last few tasks taken may still be running, a
  few milliseconds of no-op work, so this flatters the peer slightly).
* **procrastinate**: 2 ``procrastinate worker`` processes (concurrency
  ``PROCRASTINATE_CONCURRENCY`` each, polling every ``PROCRASTINATE_POLL_S``) with
  its schema applied to a fresh bench database;
  jobs of ``bench.peer_procrastinate.noop`` deferred in one ``batch_defer``, timed until
  no job is ``todo`` or ``doing``.
* **the product on the Redis broker**: ``bench.run.Bench.engine`` with ``REDIS_URL``.

Each peer is warmed up with ``WARMUP`` tasks first, so imports and connections are not
timed. This module is also the enqueueing process: ``python -m bench.peers enqueue``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TYPE_CHECKING

from bench.pg import BenchError, scalar
from bench.procs import PY, run_checked, wait_until

if TYPE_CHECKING:
    from bench.run import Bench

WARMUP = 300
PROCRASTINATE_CONCURRENCY = 10
# Every slot polls this often: one batch_defer sends one NOTIFY (PostgreSQL folds equal
# ones within a transaction), which would wake only one slot per worker otherwise.
PROCRASTINATE_POLL_S = 0.05
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"


def noop() -> None:
    """The peers' task: nothing at all."""


# --- django-q2
def _enqueue_child(count: int) -> float:
    """Runs in a Django process: enqueue ``count`` no-op tasks at once; returns the epoch."""
    import django

    django.setup()
    from django.db import transaction
    from django_q.brokers import get_broker
    from django_q.tasks import async_task

    broker = get_broker()
    if os.environ.get("REDIS_URL"):
        # One pipeline: every task becomes visible within one round trip.
        pipe = broker.connection.pipeline(transaction=False)
        real, broker.connection = broker.connection, pipe
        try:
            for _ in range(count):
                async_task("bench.peers.noop", broker=broker)
        finally:
            broker.connection = real
        pipe.execute()
        return time.time()
    with transaction.atomic():
        for _ in range(count):
            async_task("bench.peers.noop", broker=broker)
    return time.time()  # just after the commit


def _redis(url: str):
    import redis

    return redis.Redis.from_url(url)


def django_q(bench: Bench, *, count: int, redis_url: str = "") -> dict:
    kind = "peerdjqredis" if redis_url else "peerdjqorm"
    dbname = bench.database(kind, template=bench.template)
    extra = {"REDIS_URL": redis_url} if redis_url else {}
    env = bench.env(dbname, Q_WORKERS="2", **extra)
    if redis_url:
        _redis(redis_url).flushdb()
    name = f"qcluster_{kind}"
    bench.children.start(name, [PY, "manage.py", "qcluster"], env)
    enqueue = [PY, "-m", "bench.peers", "enqueue", "--count"]

    def left(conn) -> int:
        bench.children.check_alive(name)
        if redis_url:
            client = _redis(redis_url)
            return int(client.llen("django_q:portal:q"))  # Q_CLUSTER["name"] is "portal"
        return int(scalar(conn, "SELECT count(*) FROM django_q_ormq"))

    try:
        with bench.server.connect(dbname, autocommit=True) as conn:
            run_checked([*enqueue, str(WARMUP)], env, what=f"{kind} warm-up enqueue")
            wait_until(lambda: left(conn) == 0, timeout=120, what=f"{kind} warm-up")
            cpu_before = bench.children.cpu_seconds(name)
            out = run_checked([*enqueue, str(count)], env, what=f"{kind} enqueue")
            released = float(out.strip().splitlines()[-1])
            wait_until(
                lambda: left(conn) == 0, timeout=max(120, count / 20), what=kind, interval=0.05
            )
            elapsed = time.time() - released
            cpu = bench.children.cpu_seconds(name) - cpu_before
    finally:
        bench.children.stop(name)
        bench.drop_database(dbname)
        if redis_url:
            _redis(redis_url).flushdb()
    return _result(count, elapsed, cpu)


# --- procrastinate
def procrastinate(bench: Bench, *, count: int) -> dict:
    dbname = bench.database("peerprocrastinate")  # its own schema, nothing of the product's
    env = {
        **bench.env(dbname),
        "PROCRASTINATE_APP": "bench.peer_procrastinate.app",
        "BENCH_PROCRASTINATE_DSN": bench.server.conninfo(dbname),
    }
    cli = [PY, "-m", "procrastinate"]
    run_checked([*cli, "schema", "--apply"], env, what="procrastinate schema")
    names = []
    for i in (1, 2):
        name = f"procrastinate_{i}"
        argv = [
            *cli, "worker", "--concurrency", str(PROCRASTINATE_CONCURRENCY), "--name", name,
            "--fetch-job-polling-interval", str(PROCRASTINATE_POLL_S),
        ]  # fmt: skip
        bench.children.start(name, argv, env)
        names.append(name)
    defer = [PY, "-m", "bench.peer_procrastinate", "defer", "--count"]

    def left(conn) -> int:
        bench.children.check_alive(*names)
        return int(
            scalar(
                conn, "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
            )
        )

    try:
        with bench.server.connect(dbname, autocommit=True) as conn:
            run_checked([*defer, str(WARMUP)], env, what="procrastinate warm-up defer")
            wait_until(lambda: left(conn) == 0, timeout=120, what="procrastinate warm-up")
            cpu_before = bench.children.cpu_seconds(*names)
            out = run_checked([*defer, str(count)], env, what="procrastinate defer")
            released = float(out.strip().splitlines()[-1])
            wait_until(
                lambda: left(conn) == 0,
                timeout=max(120, count / 20),
                what="procrastinate",
                interval=0.05,
            )
            elapsed = time.time() - released
            cpu = bench.children.cpu_seconds(*names) - cpu_before
            failed = int(
                scalar(conn, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'failed'")
            )
    finally:
        bench.children.stop(*names)
        bench.drop_database(dbname)
    if failed:
        raise BenchError(f"procrastinate: {failed} no-op jobs failed")
    return _result(count, elapsed, cpu)


def _result(count: int, elapsed: float, cpu: float) -> dict:
    return {
        "tasks": count,
        "seconds": round(elapsed, 3),
        "tasks_per_s": count / elapsed if elapsed > 0 else 0.0,
        "cpu_ms_per_task": cpu * 1000 / count if count else None,
    }


def measure(bench: Bench, *, count: int, product: dict | None, redis_url: str) -> dict:
    """Every peer, and the product on the Redis broker; ratios against ``product``."""
    out: dict = {}
    print(f"peers: django-q2 (ORM broker), {count:,} no-op tasks...", flush=True)
    out["django_q_orm"] = django_q(bench, count=count)
    print(f"peers: django-q2 (Redis broker), {count:,} no-op tasks...", flush=True)
    out["django_q_redis"] = django_q(bench, count=count, redis_url=redis_url)
    print(f"peers: procrastinate, {count:,} no-op jobs...", flush=True)
    out["procrastinate"] = procrastinate(bench, count=count)
    print(f"engine: product on the Redis broker, {count:,} messages...", flush=True)
    _redis(redis_url).flushdb()
    try:
        out["product_redis"] = bench.engine(
            "engineredis",
            lambda db: bench.start_product_engine(db, REDIS_URL=redis_url),
            messages=count,
        )
    finally:
        _redis(redis_url).flushdb()
    base = (product or {}).get("messages_per_s")
    for key in ("django_q_orm", "django_q_redis", "procrastinate"):
        peer = out[key]["tasks_per_s"]
        out[key]["product_ratio"] = base / peer if base and peer else None
        out[key]["product_redis_ratio"] = (
            out["product_redis"]["messages_per_s"] / peer if peer else None
        )
    out["product_messages_per_s"] = base
    return out


def rows(result: dict) -> list[tuple[str, str, str, str, str]]:
    """(label, value, baseline, ratio, target): the product against each peer."""
    fmt = "{:,.1f}".format
    base = result.get("product_messages_per_s")
    redis_product = result["product_redis"]["messages_per_s"]
    out = [
        ("product, Redis broker (msg/s)", fmt(redis_product), fmt(base) if base else "-", "", ""),
    ]
    labels = {
        "django_q_orm": "django-q2 ORM no-op (tasks/s)",
        "django_q_redis": "django-q2 Redis no-op (tasks/s)",
        "procrastinate": "procrastinate no-op (jobs/s)",
    }
    for key, label in labels.items():
        peer = result[key]
        ratio = peer.get("product_ratio")
        out.append(
            (
                label,
                fmt(peer["tasks_per_s"]),
                fmt(base) if base else "-",
                "-" if ratio is None else f"{ratio:.2f}",
                "> 1",
            )
        )
        redis_ratio = peer.get("product_redis_ratio")
        out.append(
            (
                "  product on Redis vs it",
                "",
                fmt(redis_product),
                "-" if redis_ratio is None else f"{redis_ratio:.2f}",
                "",
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="enqueue django-q2 no-op tasks")
    sub = parser.add_subparsers(dest="command", required=True)
    enqueue = sub.add_parser("enqueue")
    enqueue.add_argument("--count", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    print(_enqueue_child(args.count))
    return 0


if __name__ == "__main__":
    sys.exit(main())
