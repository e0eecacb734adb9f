"""Readiness: can this deployment do its job right now, and if not, what is wrong."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor

from portal import clock

from . import selectors
from .logging import get_logger

logger = get_logger(__name__)


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


def check_database() -> Check:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return Check("database", True, f"{connection.vendor} reachable")


def check_migrations() -> Check:
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if not plan:
        return Check("migrations", True, "all applied")
    names = [f"{m.app_label}.{m.name}" for m, backwards in plan if not backwards]
    shown = ", ".join(names[:10]) + (" …" if len(names) > 10 else "")
    return Check("migrations", False, f"{len(plan)} unapplied: {shown}")


def check_heartbeats() -> Check:
    now = clock.db_now()
    limit = settings.READINESS_MAX_HEARTBEAT_AGE_S
    ages = selectors.heartbeat_ages(now=now)
    problems, fine = [], []
    for kind in settings.READINESS_HEARTBEAT_KINDS:
        age = ages.get(kind)
        if age is None:
            problems.append(f"no {kind} heartbeat ever")
        elif age > limit:
            problems.append(f"youngest {kind} heartbeat is {age:.0f} s old (limit {limit:g} s)")
        else:
            fine.append(f"{kind} {age:.0f} s ago")
    if problems:
        return Check("heartbeats", False, "; ".join(problems))
    return Check("heartbeats", True, ", ".join(fine) or "no kinds required")


def check_dispatch_lag() -> Check:
    now = clock.db_now()
    limit = settings.READINESS_MAX_DISPATCH_LAG_S
    lag = selectors.oldest_due_age_s(now=now)
    detail = f"oldest due intent waits {lag:.1f} s (limit {limit:g} s)"
    return Check("dispatch_lag", lag <= limit, detail)


CHECKS: tuple[tuple[str, Callable[[], Check]], ...] = (
    ("migrations", check_migrations),
    ("heartbeats", check_heartbeats),
    ("dispatch_lag", check_dispatch_lag),
)


def readiness() -> list[Check]:
    """Every check, in order; the rest are skipped when the database cannot be reached."""
    try:
        database = check_database()
    except DatabaseError as exc:
        # /readyz is public: the full message (hosts, users) goes to the log only.
        logger.warning("readiness.database_unreachable", error=str(exc))
        failed = Check("database", False, f"unreachable ({type(exc).__name__}); see the log")
        return [failed] + [
            Check(name, False, "skipped: database unreachable") for name, _ in CHECKS
        ]
    results = [database]
    for name, check in CHECKS:
        try:
            results.append(check())
        except DatabaseError as exc:
            logger.warning("readiness.check_failed", check=name, error=str(exc))
            results.append(Check(name, False, f"query failed ({type(exc).__name__}); see the log"))
    return results
