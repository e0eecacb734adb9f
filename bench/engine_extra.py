"""The engine's remaining figures of issue 2, measured by ``bench/run.py``.

1. **Throughput with gateway latency**: the product engine run again with
   ``BENCH_GATEWAY_LATENCY_S`` (50 ms by default), next to the no-latency figure and
   next to the bound of one attempt at a time per worker (workers / latency).
2. **Claim cost against a not-yet-due backlog**: ``intents.dispatch.claim_batch``, the
   real function, timed in a Django process on the bench database with a fixed number
   of due intents and 10,000, then 1,000,000 intents due tomorrow. Each claim runs in a
   transaction that is rolled back, so every claim finds the same rows. This module is
   that process: ``python -m bench.engine_extra claim --tenant-id N``.
3. **Retry lateness**: intents that fall due at a steady rate (200/s for 20 s) under
   the real dispatcher and qcluster; lateness is an attempt's ``started_at`` minus the
   due time the row was seeded with (each is accepted on its first attempt).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # run.py imports this module; the reverse would be circular
    from bench.run import Bench

from bench.pg import BenchError, db_clock, insert_intents, row, scalar
from bench.procs import PY, run_checked

LATENCY_S = 0.05
CLAIM_SMALL_BACKLOG = 10_000
CLAIM_SCALE_TARGET = 1.5  # the big backlog's claim within 1.5x of the small one's
LATENESS_P99_TARGET_S = 1.0
WORKERS = 2


# --- 1. throughput with gateway latency
def latency(bench: Bench, *, messages: int, latency_s: float = LATENCY_S) -> dict:
    result = bench.engine(
        "enginelatency",
        lambda db: bench.start_product_engine(db, BENCH_GATEWAY_LATENCY_S=str(latency_s)),
        messages=messages,
    )
    result["gateway_latency_s"] = latency_s
    # One attempt at a time per worker could deliver at most this many per second.
    result["serial_bound_per_s"] = WORKERS / latency_s
    return result


# --- 2. claim cost against a not-yet-due backlog
def claim_scale(
    bench: Bench, *, backlog: int, due: int, claims: int, small: int = CLAIM_SMALL_BACKLOG
) -> dict:
    dbname = bench.database("claim", template=bench.template)
    tenant = bench.tenant_id
    sizes = [s for s in (min(small, backlog), backlog) if s > 0]
    out: dict = {"due": due, "claims": claims, "runs": []}
    try:
        with bench.server.connect(dbname, autocommit=True) as conn:
            with conn.transaction():
                past = scalar(conn, "SELECT (now() - interval '1 hour')::text")
                insert_intents(conn, tenant_id=tenant, count=due, prefix="d-", first_due=past)
            tomorrow = scalar(conn, "SELECT (now() + interval '1 day')::text")
            inserted = 0
            for size in dict.fromkeys(sizes):
                t0 = time.monotonic()
                with conn.transaction():
                    # 1 ms apart: the backlog spreads over the day after tomorrow's start.
                    insert_intents(
                        conn,
                        tenant_id=tenant,
                        count=size - inserted,
                        prefix="f-",
                        first_due=tomorrow,
                        spacing_s=0.001,
                        start=inserted + 1,
                    )
                # VACUUM too: a settled table, and no autovacuum of the new rows mid-timing.
                conn.execute("VACUUM (ANALYZE) intents_intent")
                seeded_s = time.monotonic() - t0
                inserted = size
                argv = [
                    PY, "-m", "bench.engine_extra", "claim", "--tenant-id", str(tenant),
                    "--claims", str(claims), "--batch-size", str(due),
                ]  # fmt: skip
                run = json.loads(
                    run_checked(argv, bench.env(dbname), what=f"claim timing ({size:,})")
                    .strip()
                    .splitlines()[-1]
                )
                run.update(not_due=size, seed_seconds=round(seeded_s, 1))
                out["runs"].append(run)
                print(
                    f"  claim with {size:,} not due: median {run['median_ms']:.2f} ms "
                    f"({run['claimed']} claimed; its SELECT {run['select_server_ms']:.2f} ms in "
                    f"PostgreSQL on {run['index']}; seeded in "
                    f"{seeded_s:.0f} s)",
                    flush=True,
                )
    finally:
        bench.drop_database(dbname)
    if len(out["runs"]) == 2:
        a, b = out["runs"]
        out["ratio"] = b["median_ms"] / a["median_ms"] if a["median_ms"] else None
    return out


def _claim_child(tenant_id: int, claims: int, batch_size: int, warmup: int) -> dict:
    """Runs in a Django process (DJANGO_SETTINGS_MODULE, DATABASE_URL from the bench)."""
    import django

    django.setup()
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from intents.dispatch import claim_batch

    def one() -> tuple[float, int, list[str]]:
        with transaction.atomic():  # rolled back: the next claim finds the same rows
            with CaptureQueriesContext(connection) as queries:
                t0 = time.perf_counter()
                batch = claim_batch(
                    tenant_ids=[tenant_id],
                    batch_size=batch_size,
                    worker_id="bench-claim",
                    lease_margin_s=30.0,
                )
                elapsed = time.perf_counter() - t0
            transaction.set_rollback(True)
        return elapsed, len(batch.intent_ids) if batch else 0, [q["sql"] for q in queries]

    for _ in range(warmup):
        one()
    times: list[float] = []
    claimed, sql = 0, list[str]()
    for _ in range(claims):
        elapsed, claimed, sql = one()
        times.append(elapsed * 1000)
    select = next((s for s in sql if "FOR UPDATE" in s), "")
    index, server_ms = "", []
    if select:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN " + select)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            # The claim's SELECT alone, as PostgreSQL times it (no round trip, no ORM).
            for _ in range(5):
                with transaction.atomic():
                    cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + select)
                    server_ms.append(cursor.fetchone()[0][0]["Execution Time"])
                    transaction.set_rollback(True)
        found = re.findall(r"(?:Index|Bitmap Index) (?:Only )?Scan (?:Backward )?using (\w+)", plan)
        index = ",".join(dict.fromkeys(found)) or ("seq scan" if "Seq Scan" in plan else "?")
    times.sort()
    return {
        "median_ms": statistics.median(times),
        "p90_ms": times[int(len(times) * 0.9) - 1] if len(times) >= 10 else max(times),
        "min_ms": times[0],
        "claimed": claimed,
        "statements": len(sql),
        "index": index,
        "select_server_ms": statistics.median(server_ms) if server_ms else None,
    }


# --- 3. retry lateness at a steady due rate
LATENESS_SQL = """
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY late),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY late),
       max(late), min(late), count(*)
FROM (
    SELECT extract(epoch FROM a.started_at - (
        %(first)s::timestamptz + (substr(i.idempotency_key, 3)::bigint - 1) * %(spacing)s::interval
    )) AS late
    FROM intents_attempt AS a JOIN intents_intent AS i ON i.id = a.intent_id
    WHERE i.idempotency_key LIKE 'l-%%' AND a.number = 1
) AS t
"""


def lateness(bench: Bench, *, rate: float, seconds: float, lead_s: float = 3.0) -> dict:
    dbname = bench.database("lateness", template=bench.template)
    names = bench.start_product_engine(dbname)
    count = max(1, int(rate * seconds))
    spacing = 1.0 / rate
    with bench.server.connect(dbname, autocommit=True) as conn:
        bench.warm_up(conn, names, what="lateness warm-up")
        with conn.transaction():
            first = scalar(
                conn, "SELECT (clock_timestamp() + %s * interval '1 second')::text", (lead_s,)
            )
            insert_intents(
                conn, tenant_id=bench.tenant_id, count=count, prefix="l-",
                first_due=first, spacing_s=spacing,
            )  # fmt: skip
        if db_clock(conn) > _epoch(conn, first):
            bench.children.stop(*names)
            raise BenchError("lateness: seeding took longer than the lead time")
        cpu_before = bench.children.cpu_seconds(*names)
        drained = bench.wait_drained(
            conn, names, timeout=lead_s + seconds + 60, what="lateness", strict=False
        )
        cpu = bench.children.cpu_seconds(*names) - cpu_before
        p50, p99, worst, best, attempts = row(
            conn, LATENESS_SQL, {"first": first, "spacing": f"{spacing} seconds"}
        )
        accepted = scalar(
            conn,
            "SELECT count(*) FROM intents_intent WHERE idempotency_key LIKE %s "
            "AND status = 'accepted'",
            ("l-%",),
        )
    bench.children.stop(*names)
    bench.drop_database(dbname)
    return {
        "due_per_s": rate,
        "seconds": seconds,
        "messages": count,
        "accepted": accepted,
        "first_attempts": attempts,
        "completed": bool(drained),
        "p50_s": float(p50) if p50 is not None else None,
        "p99_s": float(p99) if p99 is not None else None,
        "max_s": float(worst) if worst is not None else None,
        "min_s": float(best) if best is not None else None,
        "cpu_ms_per_message": cpu * 1000 / accepted if accepted else None,
    }


def _epoch(conn, timestamp: str) -> float:
    return float(scalar(conn, "SELECT extract(epoch FROM %s::timestamptz)", (timestamp,)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="claim_batch timing in a Django process")
    sub = parser.add_subparsers(dest="command", required=True)
    claim = sub.add_parser("claim")
    claim.add_argument("--tenant-id", type=int, required=True)
    claim.add_argument("--claims", type=int, default=50)
    claim.add_argument("--batch-size", type=int, default=100)
    claim.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    print(json.dumps(_claim_child(args.tenant_id, args.claims, args.batch_size, args.warmup)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
