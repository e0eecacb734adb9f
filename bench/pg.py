"""PostgreSQL helpers of the benchmark: throw-away databases and bulk intent rows.

Only psycopg; no Django. Every database the bench makes is named ``bench_*`` and
is created from (and dropped with) one run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

BENCH_PREFIX = "bench_"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class BenchError(RuntimeError):
    """A benchmark step failed; the message says which and why."""


def row(conn: psycopg.Connection, query: str, params: Any = None) -> tuple[Any, ...]:
    """The one row a query returns (an aggregate, a ``SHOW``); a missing row is an error."""
    found = conn.execute(query, params).fetchone()
    if found is None:
        raise BenchError(f"no row from: {' '.join(query.split())[:80]}")
    return found


def scalar(conn: psycopg.Connection, query: str, params: Any = None) -> Any:
    return row(conn, query, params)[0]


@dataclass(frozen=True)
class Server:
    """Where PostgreSQL runs (taken from ``--database-url``; its database name is unused)."""

    url: str

    def url_for(self, dbname: str) -> str:
        parts = urlsplit(self.url)
        return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, ""))

    def conninfo(self, dbname: str) -> str:
        parts = urlsplit(self.url)
        return urlunsplit(("postgresql", parts.netloc, "/" + dbname, parts.query, ""))

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.conninfo("postgres"), autocommit=True, connect_timeout=5)

    def connect(self, dbname: str, **kwargs) -> psycopg.Connection:
        return psycopg.connect(self.conninfo(dbname), connect_timeout=5, **kwargs)

    def check(self) -> str:
        """Fail with a clear message unless PostgreSQL answers on loopback."""
        scheme = urlsplit(self.url).scheme
        if scheme not in {"postgres", "postgresql", "pgsql"}:
            raise BenchError(f"--database-url must be a postgres:// URL, not {scheme}://")
        if self.host not in LOOPBACK:
            raise BenchError(f"the bench only runs against loopback PostgreSQL, not {self.host}")
        try:
            with self.admin() as conn:
                version = scalar(conn, "SHOW server_version")
        except psycopg.OperationalError as exc:
            raise BenchError(
                f"PostgreSQL is not reachable at {self.conninfo('postgres')} "
                f"({' '.join(str(exc).split())}); start it, or pass --database-url"
            ) from None
        if int(version.split(".")[0]) < 13:
            raise BenchError(f"PostgreSQL {version} is too old (gen_random_uuid needs 13+)")
        return version

    def create_database(self, name: str, *, template: str | None = None) -> None:
        assert name.startswith(BENCH_PREFIX)
        with self.admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            if template:
                stmt = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            else:
                stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            # A template must have no other session; a process just stopped may linger.
            for attempt in range(50):
                try:
                    conn.execute(stmt)
                    return
                except psycopg.errors.ObjectInUse:
                    if attempt == 49:
                        raise
                    time.sleep(0.1)

    def drop_database(self, name: str) -> None:
        assert name.startswith(BENCH_PREFIX)
        with self.admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


INSERT_INTENTS = """
INSERT INTO intents_intent (
    public_id, idempotency_key, target_key, requested_version, contract_version,
    contract, payload, payload_sha256, metadata, status, attempts_count, max_attempts,
    attempt_timeout_s, next_attempt_at, lease_owner, lease_expires_at, deadline_at,
    cancel_requested, reason_code, gateway_message_id, correlation_id, generation,
    connection, connection_cursor, traceparent, internal, created_at, updated_at, finished_at, tenant_id, target_id, target_revision_id
)
SELECT
    gen_random_uuid(), %(prefix)s || g, t.key, '', r.version,
    r.contract, p.bytes, encode(sha256(p.bytes), 'hex'), '{}'::jsonb, 'pending', 0,
    (r.contract -> 'retry' ->> 'max_attempts')::int,
    (r.contract ->> 'attempt_timeout_s')::float,
    %(first_due)s::timestamptz + (g - 1) * %(spacing)s::interval, '', NULL,
    now() + interval '2 days',
    false, '', '', '', 1, '', 0, '', false,
    now(), now(), NULL, %(tenant_id)s, t.id, r.id
FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS g
CROSS JOIN intents_target AS t
JOIN intents_targetrevision AS r ON r.id = t.current_revision_id
CROSS JOIN LATERAL (SELECT convert_to({payload}, 'UTF8') AS bytes) AS p
WHERE t.key = %(target)s
"""
# The payload of the g-th row, as SQL text (canonical JSON: sorted keys, no spaces).
SMS_PAYLOAD = (
    """'{"text":"bench message","to":"+1555' || lpad((g %% 10000000)::text, 7, '0') || '"}'"""
)


def insert_intents(
    conn: psycopg.Connection,
    *,
    tenant_id: int,
    count: int,
    prefix: str,
    first_due: str = "now",
    spacing_s: float = 0.0,
    target: str = "sms.otp",
    payload: str = SMS_PAYLOAD,
    start: int = 1,
    chunk: int = 100_000,
) -> None:
    """Insert ``count`` pending intents as ``intent_submit`` would store them.

    Payload bytes are canonical JSON with their SHA-256, the contract is the target's
    current revision, the deadline two days ahead. ``payload`` is a SQL text expression
    of the row number ``g`` (a constant of the bench, never user input). ``first_due`` is a timestamptz
    expression value (``'now'`` or an ISO time); the i-th row is due ``i * spacing_s``
    after it. The caller commits; big counts go in chunks of one statement each.
    """
    if first_due == "now":
        first_due = scalar(conn, "SELECT now()::text")
    done = 0
    with conn.cursor() as cur:
        while done < count:
            n = min(chunk, count - done)
            cur.execute(
                INSERT_INTENTS.replace("{payload}", payload),
                {
                    "prefix": prefix,
                    "first_due": first_due,
                    "spacing": f"{spacing_s} seconds",
                    "tenant_id": tenant_id,
                    "target": target,
                    "start": start + done,
                    "stop": start + done + n - 1,
                },
            )
            if cur.rowcount != n:
                raise BenchError(f"inserted {cur.rowcount} intents, expected {n} (no {target}?)")
            done += n


def tenant_id(conn: psycopg.Connection, name: str) -> int:
    found = conn.execute("SELECT id FROM accounts_tenant WHERE name = %s", (name,)).fetchone()
    if found is None:
        raise BenchError(f"no tenant {name!r} in the bench database")
    return int(found[0])


def db_clock(conn: psycopg.Connection) -> float:
    """The database's wall clock as epoch seconds (outside any transaction)."""
    return float(scalar(conn, "SELECT extract(epoch FROM clock_timestamp())"))
