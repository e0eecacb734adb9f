"""Claim cost by number of tenants (issue 13, item 2), measured by ``bench/run.py``.

Two cases on one bench database, each with 100 due intents (one batch):

* **small**: 10 active tenants, each with 10 due intents;
* **large**: 10,000 active tenants, of which 100 have one due intent each.

``intents.dispatch.claim_from``, the dispatcher's real claim, is timed in a Django
process with a fresh ``DueTenants`` per claim, so each timed claim includes the full
look for tenants with due work (the most a claim does). Each claim is rolled back, so
every claim finds the same rows. The large case must stay within 1.5x of the small one:
a tenant with nothing due costs nothing.

This module is also that process: ``python -m bench.claim_tenants time``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.run import Bench

from bench.pg import insert_intents, scalar
from bench.procs import PY, run_checked

TARGET = 1.5
BATCH = 100
CASES = (  # (label, active tenants, tenants with due work, due intents each)
    ("small", 10, 10, 10),
    ("large", 10_000, 100, 1),
)


def _add_tenants(conn, *, like: int, count: int, prefix: str) -> list[int]:
    """``count`` active tenants copied from tenant ``like`` (every column but id, name)."""
    columns = [
        c
        for (c,) in conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'accounts_tenant' AND column_name NOT IN ('id', 'name') "
            "ORDER BY ordinal_position"
        ).fetchall()
    ]
    listed = ", ".join(columns)
    conn.execute(
        f"INSERT INTO accounts_tenant (name, {listed}) "  # column names from the catalog
        f"SELECT %s || g, {listed} FROM accounts_tenant "
        "CROSS JOIN generate_series(1, %s) AS g WHERE id = %s",
        (prefix, count, like),
    )
    return [
        r[0]
        for r in conn.execute(
            "SELECT id FROM accounts_tenant WHERE name LIKE %s ORDER BY id", (prefix + "%",)
        ).fetchall()
    ]


def measure(bench: Bench, *, claims: int) -> dict:
    out: dict = {"claims": claims, "batch": BATCH, "runs": []}
    for label, active, due_tenants, due_each in CASES:
        dbname = bench.database(f"claimtenants{label}", template=bench.template)
        try:
            with bench.server.connect(dbname, autocommit=True) as conn:
                with conn.transaction():
                    # The bench tenant is one of them.
                    ids = [bench.tenant_id] + _add_tenants(
                        conn, like=bench.tenant_id, count=active - 1, prefix=f"ct{label}-"
                    )
                    for n, tenant in enumerate(ids[:due_tenants]):
                        insert_intents(
                            conn, tenant_id=tenant, count=due_each, prefix=f"d{n}-",
                            first_due=scalar(conn, "SELECT (now() - interval '1 hour')::text"),
                        )  # fmt: skip
                conn.execute("VACUUM (ANALYZE) intents_intent")
                conn.execute("VACUUM (ANALYZE) accounts_tenant")
                counted = scalar(conn, "SELECT count(*) FROM accounts_tenant WHERE is_active")
            argv = [PY, "-m", "bench.claim_tenants", "time", "--claims", str(claims)]
            run = json.loads(
                run_checked(argv, bench.env(dbname), what=f"claim timing ({label})")
                .strip()
                .splitlines()[-1]
            )
        finally:
            bench.drop_database(dbname)
        run.update(label=label, active_tenants=counted, due_tenants=due_tenants)
        out["runs"].append(run)
        print(
            f"  claim over {counted:,} active tenants ({due_tenants} with due work): "
            f"median {run['median_ms']:.2f} ms, {run['claimed']} claimed, "
            f"{run['statements']} statements",
            flush=True,
        )
    small, large = out["runs"]
    out["ratio"] = large["median_ms"] / small["median_ms"] if small["median_ms"] else None
    return out


def _time_claims(claims: int, warmup: int) -> dict:
    """Runs in a Django process (DJANGO_SETTINGS_MODULE, DATABASE_URL from the bench)."""
    import django

    django.setup()
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from intents.dispatch import claim_from
    from intents.due_tenants import DueTenants

    def one() -> tuple[float, int, int, list]:
        with transaction.atomic():  # rolled back: the next claim finds the same rows
            with CaptureQueriesContext(connection) as queries:
                t0 = time.perf_counter()
                batch = claim_from(
                    DueTenants(), batch_size=BATCH, worker_id="bench-claim", lease_margin_s=30.0
                )
                elapsed = time.perf_counter() - t0
            transaction.set_rollback(True)
        timed = [(float(q["time"]) * 1000, q["sql"][:60]) for q in queries]
        return elapsed, len(batch.intent_ids) if batch else 0, len(queries), timed

    for _ in range(warmup):
        one()
    times: list[float] = []
    timed: list = []
    claimed = statements = 0
    for _ in range(claims):
        elapsed, claimed, statements, timed = one()
        times.append(elapsed * 1000)
    times.sort()
    return {
        "median_ms": statistics.median(times),
        "p90_ms": times[int(len(times) * 0.9) - 1] if len(times) >= 10 else max(times),
        "claimed": claimed,
        "statements": statements,
        "last_claim_statements_ms": timed,  # (ms, start of the SQL) as the client saw it
    }


def rows(result: dict) -> list[tuple[str, str, str, str, str]]:
    """Table rows for ``bench/run.py``: (label, value, baseline, ratio, target)."""
    small, large = result["runs"]
    ratio = result.get("ratio")
    return [
        (
            f"claim, {large['active_tenants']:,} tenants (ms)",
            f"{large['median_ms']:.2f}",
            f"{small['median_ms']:.2f}",
            "-" if ratio is None else f"{ratio:.2f}",
            f"<= {TARGET}",
        ),
        (
            f"  due tenants {large['due_tenants']} vs {small['due_tenants']} (of {small['active_tenants']})",
            f"{large['claimed']}",
            f"{small['claimed']}",
            "",
            "",
        ),
        ("  statements per claim", str(large["statements"]), str(small["statements"]), "", ""),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="claim_from timing in a Django process")
    sub = parser.add_subparsers(dest="command", required=True)
    timing = sub.add_parser("time")
    timing.add_argument("--claims", type=int, default=50)
    timing.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    print(json.dumps(_time_claims(args.claims, args.warmup)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
