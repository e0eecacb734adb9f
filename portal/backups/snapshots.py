"""One consistent snapshot per database vendor, and its restore.

Each snapshot reads the counts, the audit head and the file names from the *same*
point in time as the copy it writes: SQLite through the online backup API (the copy is
then read), PostgreSQL through an exported REPEATABLE READ snapshot that ``pg_dump
--snapshot`` shares. SQL Server has no client-side dump; docs/sqlserver.md gives the
T-SQL (``BACKUP DATABASE … WITH COPY_ONLY``).
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Protocol

from django.db import connection

from .errors import BackupError
from .manifest import AuditHead, audit_head_of, backed_up_tables, file_columns

AUDIT_HEAD_SQL = "SELECT sequence, hash FROM audit_auditevent ORDER BY sequence DESC LIMIT 1"
PG_TOOL_TIMEOUT_S = 3600


@dataclasses.dataclass(frozen=True)
class SnapshotFacts:
    counts: dict[str, int]
    audit_head: AuditHead
    file_names: list[str]


class Snapshot(Protocol):
    vendor: str

    def take(self, destination: Path) -> SnapshotFacts: ...

    def restore(self, source: Path) -> None: ...


def _facts(cursor: Any, existing: set[str]) -> SnapshotFacts:
    """Counts, audit head and file names, read through ``cursor`` (inside the snapshot)."""
    quote = connection.ops.quote_name
    counts = {}
    for table in backed_up_tables():
        if table in existing:
            cursor.execute(f"SELECT COUNT(*) FROM {quote(table)}")  # noqa: S608 - model tables
            counts[table] = int(cursor.fetchone()[0])
    head = AuditHead(sequence=0, hash="")
    if "audit_auditevent" in existing:
        cursor.execute(AUDIT_HEAD_SQL)
        head = audit_head_of(cursor.fetchall())
    names: set[str] = set()
    for table, column in file_columns():
        if table in existing:
            cursor.execute(
                f"SELECT {quote(column)} FROM {quote(table)} "  # noqa: S608 - model tables
                f"WHERE {quote(column)} IS NOT NULL AND {quote(column)} <> ''"
            )
            names.update(str(row[0]) for row in cursor.fetchall())
    return SnapshotFacts(counts=counts, audit_head=head, file_names=sorted(names))


class SqliteSnapshot:
    vendor = "sqlite"

    def take(self, destination: Path) -> SnapshotFacts:
        connection.ensure_connection()
        with closing(sqlite3.connect(destination)) as copy:
            connection.connection.backup(copy)
            cursor = copy.cursor()
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            existing = {row[0] for row in cursor.fetchall()}
            return _facts(cursor, existing)

    def restore(self, source: Path) -> None:
        with closing(sqlite3.connect(source)) as snapshot:
            try:
                snapshot.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.DatabaseError as exc:
                raise BackupError(f"the archive's database is not an SQLite file: {exc}") from exc
            connection.ensure_connection()
            snapshot.backup(connection.connection)
        connection.close()  # the next query opens the restored file afresh


class PostgresSnapshot:
    vendor = "postgresql"

    def take(self, destination: Path) -> SnapshotFacts:
        import psycopg

        with closing(psycopg.connect(**self._connect_kwargs())) as pg:
            pg.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            pg.read_only = True
            with pg.cursor() as cursor:
                cursor.execute("SELECT pg_export_snapshot()")
                snapshot_id = cursor.fetchone()[0]  # type: ignore[index]
                cursor.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                )
                facts = _facts(cursor, {row[0] for row in cursor.fetchall()})
                # pg_dump reads the very snapshot the counts came from, while it is held.
                self._run(
                    "pg_dump",
                    "--format=custom",
                    f"--snapshot={snapshot_id}",
                    f"--file={destination}",
                )
            pg.rollback()
        return facts

    def restore(self, source: Path) -> None:
        from django.db import connections

        connections.close_all()  # --clean drops the tables this process has open
        self._run(
            "pg_restore",
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            str(source),
        )

    def _connect_kwargs(self) -> dict[str, Any]:
        settings = connection.settings_dict
        kwargs = {
            "dbname": settings["NAME"],
            "user": settings.get("USER") or None,
            "password": settings.get("PASSWORD") or None,
            "host": settings.get("HOST") or None,
            "port": settings.get("PORT") or None,
        }
        return {k: v for k, v in kwargs.items() if v}

    def _run(self, tool: str, *args: str) -> None:
        settings = connection.settings_dict
        command = [tool, f"--dbname={settings['NAME']}"]
        for flag, key in (("--host", "HOST"), ("--port", "PORT"), ("--username", "USER")):
            if settings.get(key):
                command.append(f"{flag}={settings[key]}")
        env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
        if settings.get("PASSWORD"):
            env["PGPASSWORD"] = str(settings["PASSWORD"])  # never on the command line
        try:
            result = subprocess.run(
                [*command, *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=PG_TOOL_TIMEOUT_S,
                check=False,
            )
        except FileNotFoundError:
            raise BackupError(
                f"{tool} is not installed (Debian: apt-get install postgresql-client)"
            ) from None
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no message"])[-1]
            raise BackupError(f"{tool} failed (exit {result.returncode}): {last}")


def snapshot_for_vendor(vendor: str) -> Snapshot:
    if vendor == "sqlite":
        return SqliteSnapshot()
    if vendor == "postgresql":
        return PostgresSnapshot()
    raise BackupError(
        f"no backup command for {vendor}: on SQL Server use BACKUP DATABASE … WITH "
        "COPY_ONLY, CHECKSUM (docs/sqlserver.md#backup-and-restore)"
    )


def live_counts() -> dict[str, int]:
    """Rows per table in the database now (tables it does not have yet count as absent)."""
    existing = set(connection.introspection.table_names())
    quote = connection.ops.quote_name
    counts = {}
    with connection.cursor() as cursor:
        for table in backed_up_tables():
            if table in existing:
                cursor.execute(f"SELECT COUNT(*) FROM {quote(table)}")  # noqa: S608
                counts[table] = int(cursor.fetchone()[0])
    return counts


@contextmanager
def temporary_path(directory: Path, suffix: str) -> Iterator[Path]:
    path = directory / f".{os.getpid()}-{os.urandom(4).hex()}{suffix}"
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
