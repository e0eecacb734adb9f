"""The one clock the delivery engine reads.

Due selection and leases use the database's clock, so two workers whose own clocks
disagree can never both believe they own one intent. Tests replace the clock with
``override`` instead of sleeping or patching the database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection
from django.utils import timezone

_override: dt.datetime | None = None


def db_now() -> dt.datetime:
    """Current UTC time as the database sees it (one round trip)."""
    if _override is not None:
        return _override
    vendor = connection.vendor
    sql = {
        "postgresql": "SELECT statement_timestamp()",
        "microsoft": "SELECT SYSUTCDATETIME()",
    }.get(vendor)
    if sql is None:  # SQLite shares the host's clock: there is no other to ask.
        return timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(sql)
        value: dt.datetime = cursor.fetchone()[0]
    if timezone.is_naive(value):
        value = timezone.make_aware(value, dt.UTC)
    return value.astimezone(dt.UTC)


def now() -> dt.datetime:
    """The application's clock (for timestamps that need no cross-worker agreement)."""
    return _override if _override is not None else timezone.now()


@contextmanager
def override(when: dt.datetime) -> Iterator[ClockOverride]:
    """Freeze ``db_now`` at ``when``; ``advance`` moves it forward."""
    global _override
    previous = _override
    handle = ClockOverride(when)
    _override = when
    try:
        yield handle
    finally:
        _override = previous


class ClockOverride:
    def __init__(self, when: dt.datetime) -> None:
        self.now = when

    def advance(self, seconds: float) -> dt.datetime:
        global _override
        self.now = self.now + dt.timedelta(seconds=seconds)
        _override = self.now
        return self.now
