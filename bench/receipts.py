"""Issue 16's figure: the receipts endpoint under gunicorn against the intake's bare view.

Run by ``bench/run.py`` (section ``receipts``). A fresh database holds
``--receipt-messages`` intents accepted through the built-in ``simulator-sms``
connection (``gateway_message_id`` ``sim-<n>``, one accepted attempt each, seeded in
SQL as the engine leaves them). gunicorn serves the product (same command as the API
section, ``GATEWAY_SIMULATOR_RECEIPT_SECRET`` set), and ``bench/load.py`` posts
``POST /hooks/receipts/simulator-sms``: each request one ``delivered`` receipt for the
next message, signed as the simulator signs them (Standard Webhooks), so every request
verifies a signature, finds its intent, stores a receipt and moves the intent's
delivery status. The baseline is the API section's bare view (``bench/floor_urls.py``:
one INSERT per request) of the same run, measured here when that section did not run.
Target: ≥ 0.6 of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.run import Bench

RECEIPTS_TARGET_RATIO = 0.6
RECEIPT_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
CONNECTION = "simulator-sms"
PREFIX = "sim-"

# Accepted intents through simulator-sms, each with its accepted attempt, as the engine
# records them (delivery_status "unknown": receipts are expected, none came yet).
INSERT_ACCEPTED = """
WITH accepted AS (
    INSERT INTO intents_intent (
        public_id, idempotency_key, target_key, requested_version, contract_version,
        contract, payload, payload_sha256, metadata, status, attempts_count, max_attempts,
        attempt_timeout_s, next_attempt_at, lease_owner, lease_expires_at, deadline_at,
        cancel_requested, reason_code, gateway_message_id, correlation_id, generation,
        connection, connection_cursor, traceparent, internal, delivery_status,
        created_at, updated_at, finished_at, tenant_id, target_id, target_revision_id
    )
    SELECT
        gen_random_uuid(), 'r-' || g, t.key, '', r.version,
        r.contract, p.bytes, encode(sha256(p.bytes), 'hex'), '{}'::jsonb, 'accepted', 1,
        (r.contract -> 'retry' ->> 'max_attempts')::int,
        (r.contract ->> 'attempt_timeout_s')::float,
        NULL, '', NULL, now() + interval '10 minutes',
        false, 'gateway_accepted', %(prefix)s || g, '', 1,
        %(connection)s, 0, '', false, 'unknown',
        now() - interval '1 minute', now() - interval '50 seconds', now() - interval '50 seconds',
        %(tenant_id)s, t.id, r.id
    FROM generate_series(1, %(count)s::bigint) AS g
    CROSS JOIN intents_target AS t
    JOIN intents_targetrevision AS r ON r.id = t.current_revision_id
    CROSS JOIN LATERAL (
        SELECT convert_to(
            '{"text":"bench message","to":"+1555' || lpad((g %% 10000000)::text, 7, '0') || '"}',
            'UTF8'
        ) AS bytes
    ) AS p
    WHERE t.key = 'sms.otp'
    RETURNING id, finished_at, gateway_message_id
)
INSERT INTO intents_attempt (
    intent_id, number, generation, started_at, finished_at, duration_ms, outcome,
    gateway_status, gateway_message_id, error, worker_id, retry_after_s, connection
)
SELECT id, 1, 1, finished_at - interval '40 milliseconds', finished_at, 40, 'accepted',
       202, gateway_message_id, '', 'bench@seed:1', NULL, %(connection)s
FROM accepted
"""


def measure(bench: Bench, *, messages: int, floor: dict | None) -> dict:
    def seed(dbname: str) -> float:
        import time

        t0 = time.monotonic()
        with bench.server.connect(dbname, autocommit=True) as conn:
            conn.execute(
                INSERT_ACCEPTED,
                {
                    "count": messages,
                    "prefix": PREFIX,
                    "connection": CONNECTION,
                    "tenant_id": bench.tenant_id,
                },
            )
            conn.execute("VACUUM (ANALYZE) intents_intent")
            conn.execute("VACUUM (ANALYZE) intents_attempt")
        return time.monotonic() - t0

    print(f"receipts: product, {bench.args.duration:g} s of load...", flush=True)
    product = bench.api(
        "receipts",
        "bench.settings",
        api_key="",
        seed=seed,
        path=f"/hooks/receipts/{CONNECTION}",
        load_args=("--receipts-secret", RECEIPT_SECRET, "--receipt-messages", str(messages))
        + ("--receipt-prefix", PREFIX),
        GATEWAY_SIMULATOR_RECEIPT_SECRET=RECEIPT_SECRET,
    )
    if floor is None:
        print(f"receipts: API floor (bare view), {bench.args.duration:g} s of load...", flush=True)
        floor = bench.api("receiptsfloor", "bench.floor_settings", api_key="")
        floor["measured_by"] = "receipts"
    base = floor["requests_per_s"]
    return {
        "messages": messages,
        "product": product,
        "floor": floor,
        "ratio": product["requests_per_s"] / base if base else None,
    }


def rows(result: dict) -> list[tuple[str, str, str, str, str]]:
    from bench.run import fmt

    p, f = result["product"], result["floor"]
    cpu_p, cpu_f = p["server_cpu_ms_per_request"], f["server_cpu_ms_per_request"]
    return [
        (
            "receipts endpoint (requests/s)",
            fmt(p["requests_per_s"]),
            fmt(f["requests_per_s"]),
            fmt(result["ratio"], 2),
            f">= {RECEIPTS_TARGET_RATIO}",
        ),
        ("  latency p50 (ms)", fmt(p["p50_ms"], 2), fmt(f["p50_ms"], 2), "", ""),
        ("  latency p99 (ms)", fmt(p["p99_ms"], 2), fmt(f["p99_ms"], 2), "", ""),
        (
            "  server CPU ms per request",
            fmt(cpu_p, 2),
            fmt(cpu_f, 2),
            fmt(cpu_f / cpu_p if cpu_p and cpu_f else None, 2),
            "",
        ),
        (
            "  receipts stored / requests",
            f"{p.get('receipt_rows', 0):,}",
            f"{p['requests_total']:,}",
            "",
            "",
        ),
    ]
