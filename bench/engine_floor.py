"""The engine floor, run as its own process: ``python -m bench.engine_floor CONNINFO``.

The same writes the engine makes per message, in raw psycopg with nothing else: claim
up to 100 due rows with ``FOR UPDATE SKIP LOCKED`` and lease them with one UPDATE
(one transaction), then one attempt INSERT and one intent UPDATE per message (one
transaction per batch). By default ``executemany`` pipelines those statements (the
strictest floor); ``--per-message`` sends them one at a time in a loop, the floor as
issue 2 defines it ("a raw psycopg loop doing claim + attempt INSERT + intent UPDATE per
message"). Runs until SIGTERM,
like the product's processes; the bench watches the table to see when all is done.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import uuid

import psycopg

CLAIM = """
SELECT id FROM intents_intent
WHERE tenant_id = %(tenant)s AND status = 'pending' AND next_attempt_at <= statement_timestamp()
ORDER BY next_attempt_at
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""
LEASE = """
UPDATE intents_intent
SET status = 'in_flight', lease_owner = %(token)s,
    lease_expires_at = statement_timestamp() + interval '35 seconds',
    updated_at = statement_timestamp()
WHERE id = ANY(%(ids)s)
"""
INSERT_ATTEMPT = """
INSERT INTO intents_attempt (
    intent_id, number, generation, started_at, finished_at, duration_ms, outcome,
    gateway_status, gateway_message_id, error, worker_id, retry_after_s, connection
) VALUES (%s, 1, 1, now(), now(), 0, 'accepted', 202, %s, '', %s, NULL, '')
"""
RECORD = """
UPDATE intents_intent
SET status = 'accepted', attempts_count = attempts_count + 1, next_attempt_at = NULL,
    lease_owner = '', lease_expires_at = NULL, reason_code = 'gateway_accepted',
    gateway_message_id = %s, finished_at = now(), updated_at = now()
WHERE id = %s AND lease_owner = %s AND status = 'in_flight'
"""


def run(
    conninfo: str, *, tenant_id: int, batch_size: int, idle_s: float, per_message: bool = False
) -> int:
    processed = 0
    worker = f"floor@{os.getpid()}"
    stopping = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while not stopping:
            token = f"{worker}:{uuid.uuid4().hex[:16]}"
            with conn.transaction():
                ids = [
                    row[0]
                    for row in conn.execute(CLAIM, {"tenant": tenant_id, "limit": batch_size})
                ]
                if ids:
                    conn.execute(LEASE, {"token": token, "ids": ids})
            if not ids:
                time.sleep(idle_s)
                continue
            message_ids = {i: f"floor-{uuid.uuid4()}" for i in ids}
            with conn.transaction(), conn.cursor() as cur:
                if per_message:
                    for i in ids:
                        cur.execute(INSERT_ATTEMPT, (i, message_ids[i], token))
                        cur.execute(RECORD, (message_ids[i], i, token))
                else:
                    cur.executemany(INSERT_ATTEMPT, [(i, message_ids[i], token) for i in ids])
                    cur.executemany(RECORD, [(message_ids[i], i, token) for i in ids])
            processed += len(ids)
    return processed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("conninfo")
    parser.add_argument("--tenant-id", type=int, required=True)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--idle-s", type=float, default=0.05)
    parser.add_argument("--per-message", action="store_true", help="no pipelining")
    args = parser.parse_args(argv)
    count = run(
        args.conninfo,
        tenant_id=args.tenant_id,
        batch_size=args.batch_size,
        idle_s=args.idle_s,
        per_message=args.per_message,
    )
    print(count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
