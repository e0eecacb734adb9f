"""Issue 13 item 5: does intake slow down as intents pile up, and what does one cost on disk?

Run by ``bench/run.py`` (section ``api-growth``): the product API under the same load
as section 2, on a fresh database already holding 0, 100,000 and 1,000,000 intents of
the bench tenant (``--growth-sizes``), seeded in SQL with ``generate_series`` as
``intent_submit`` stores them and then delivered: ``accepted`` a minute after creation,
each with its one attempt row, created over the past day (the stored history a service
keeps, which the idempotency index and the open-intent quota must not read through).
Then ``VACUUM (ANALYZE)``, so autovacuum does not start mid-run. The figure is each
run's p99 against the empty run's; target: within 1.5x.

Also printed, from the largest database: bytes per stored intent and per attempt on
PostgreSQL, table with its TOAST and every index (``pg_total_relation_size`` over the
row count), and the table alone (``pg_table_size``).
"""

from __future__ import annotations

import time
from typing import Any

GROWTH_P99_TARGET = 1.5
DEFAULT_SIZES = (0, 100_000, 1_000_000)

# One chunk of stored history: intents created over the past day, accepted one minute
# after creation, each with one accepted attempt. The payload and contract are what
# bench.pg.INSERT_INTENTS stores for a new intent.
INSERT_STORED = """
WITH stored AS (
    INSERT INTO intents_intent (
        public_id, idempotency_key, target_key, requested_version, contract_version,
        contract, payload, payload_sha256, metadata, status, attempts_count, max_attempts,
        attempt_timeout_s, next_attempt_at, lease_owner, lease_expires_at, deadline_at,
        cancel_requested, reason_code, gateway_message_id, correlation_id, generation,
        connection, connection_cursor, traceparent, internal, created_at, updated_at, finished_at, tenant_id, target_id, target_revision_id
    )
    SELECT
        gen_random_uuid(), 'h-' || g, t.key, '', r.version,
        r.contract, p.bytes, encode(sha256(p.bytes), 'hex'), '{"order": "A-17"}'::jsonb,
        'accepted', 1,
        (r.contract -> 'retry' ->> 'max_attempts')::int,
        (r.contract ->> 'attempt_timeout_s')::float,
        NULL, '', NULL, c.at + interval '10 minutes',
        false, 'gateway_accepted', 'gw-' || g, md5(g::text), 1, '', 0, '', false,
        c.at, c.at + interval '1 minute', c.at + interval '1 minute',
        %(tenant_id)s, t.id, r.id
    FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS g
    CROSS JOIN intents_target AS t
    JOIN intents_targetrevision AS r ON r.id = t.current_revision_id
    CROSS JOIN LATERAL (
        SELECT
            convert_to(
                '{"text":"Your code is 123456","to":"+1555'
                || lpad((g %% 10000000)::text, 7, '0') || '"}',
                'UTF8'
            ) AS bytes
    ) AS p
    CROSS JOIN LATERAL (
        SELECT now() - interval '1 day' + (g %% 86400) * interval '1 second' AS at
    ) AS c
    WHERE t.key = 'sms.otp'
    RETURNING id, finished_at, gateway_message_id
)
INSERT INTO intents_attempt (
    intent_id, number, generation, started_at, finished_at, duration_ms, outcome,
    gateway_status, gateway_message_id, error, worker_id, retry_after_s, connection
)
SELECT id, 1, 1, finished_at - interval '40 milliseconds', finished_at, 40, 'accepted',
       202, gateway_message_id, '', 'bench@seed:1', NULL, ''
FROM stored
"""

SIZE_SQL = """
SELECT pg_total_relation_size(%(table)s::regclass), pg_table_size(%(table)s::regclass),
       (SELECT count(*) FROM {table})
"""


def seed_stored(conn: Any, *, tenant_id: int, count: int, chunk: int = 100_000) -> None:
    """``count`` delivered intents with one attempt each, in chunks; the caller commits."""
    done = 0
    with conn.cursor() as cur:
        while done < count:
            n = min(chunk, count - done)
            cur.execute(
                INSERT_STORED,
                {"tenant_id": tenant_id, "start": done + 1, "stop": done + n},
            )
            done += n


def bytes_per_row(conn: Any, table: str) -> dict[str, float]:
    total, heap, rows = conn.execute(SIZE_SQL.format(table=table), {"table": table}).fetchone()
    return {
        "rows": rows,
        "bytes_per_row_with_indexes": total / rows if rows else 0.0,
        "bytes_per_row_table": heap / rows if rows else 0.0,
    }


def growth(bench: Any, *, sizes: tuple[int, ...]) -> dict:
    """The product API's latency with ``sizes`` intents already stored, one run each."""
    runs = []
    storage: dict[str, Any] = {}
    for size in sizes:

        def seed(dbname: str, size: int = size) -> float:
            t0 = time.monotonic()
            with bench.server.connect(dbname) as conn:
                seed_stored(conn, tenant_id=bench.tenant_id, count=size)
                conn.commit()
                conn.autocommit = True
                conn.execute("VACUUM (ANALYZE) intents_intent")
                conn.execute("VACUUM (ANALYZE) intents_attempt")
                if size == max(sizes) and size:
                    storage.update(
                        intent=bytes_per_row(conn, "intents_intent"),
                        attempt=bytes_per_row(conn, "intents_attempt"),
                    )
            return time.monotonic() - t0

        print(f"API growth: {size:,} intents stored, {bench.args.duration:g} s of load...")
        result = bench.api(f"apigrowth{size}", "bench.settings", api_key=bench.api_key, seed=seed)
        runs.append(
            {
                "stored": size,
                "p50_ms": result["p50_ms"],
                "p99_ms": result["p99_ms"],
                "requests_per_s": result["requests_per_s"],
                "server_cpu_ms_per_request": result["server_cpu_ms_per_request"],
                "seed_seconds": round(result.get("seed_seconds") or 0.0, 1),
                "statuses": result["statuses"],
                "errors": result["errors"],
            }
        )
    base = runs[0]["p99_ms"] if runs else None
    for run in runs:
        run["p99_ratio"] = run["p99_ms"] / base if base else None
    worst = max((r["p99_ratio"] or 0.0 for r in runs), default=None)
    return {"runs": runs, "worst_p99_ratio": worst, "storage": storage}


def render(result: dict) -> list[str]:
    """Rows for the further-figures table (label, value, baseline, ratio, target)."""
    rows: list[tuple[str, str, str, str, str]] = []
    runs = result["runs"]
    if not runs:
        return []
    base = runs[0]
    for run in runs:
        rows.append(
            (
                f"API p99, {run['stored']:,} stored (ms)",
                f"{run['p99_ms']:,.2f}",
                f"{base['p99_ms']:,.2f}" if run is not base else "",
                f"{run['p99_ratio']:.2f}" if run is not base and run["p99_ratio"] else "",
                f"<= {GROWTH_P99_TARGET}" if run is not base else "",
            )
        )
        rows.append(
            (
                "  req/s, server CPU ms/req",
                f"{run['requests_per_s']:,.1f}",
                f"{run['server_cpu_ms_per_request'] or 0:,.2f}",
                "",
                "",
            )
        )
    for kind in ("intent", "attempt"):
        size = result["storage"].get(kind)
        if size:
            rows.append(
                (
                    f"bytes per {kind} (all / table)",
                    f"{size['bytes_per_row_with_indexes']:,.0f}",
                    f"{size['bytes_per_row_table']:,.0f}",
                    "",
                    "",
                )
            )
    return [f"{a:<34}{b:>12}{c:>12}{d:>8}{e:>9}" for a, b, c, d, e in rows]
