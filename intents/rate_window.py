"""Per-tenant intake rate: a fixed one-minute window counted in the database.

The web runs as several gunicorn processes (and machines), so a per-process cache
(locmem) would let each process admit the full rate. One row per tenant per minute
(``ApiRateWindow``) is shared by all of them, and admission is a single conditional
UPDATE, so concurrent requests can never push a window past its limit:

    UPDATE ... SET count = count + 1 WHERE tenant = t AND window_start = w AND count < limit

A fixed window admits at most twice the limit across a window boundary; that burst is
the accepted price of one row write per request instead of a sliding log.

``intent_submit`` counts a request inside the transaction that stores its intent, so
every intent ever created is counted in the window of its creation, committed with it.
The open-intent quota's estimate relies on that (``windows_count_since``). The UPDATE
returns the window's new count (``RETURNING``; SQL Server: ``OUTPUT INSERTED``), so
the estimate needs no SELECT of its own while it reads only the current window. The
statements here are plain parameterised SQL built once from the model's metadata
(quoted by the connection, so the same text runs on SQLite, PostgreSQL and SQL
Server): the ORM's compilation cost more CPU than the statement itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import IntegrityError, connection, models, transaction

from portal.accounts.models import Tenant

from .models import ApiRateWindow

WINDOW = dt.timedelta(minutes=1)
# Windows older than this are dropped: the quota estimate reads back at most
# OPEN_COUNT_MAX_AGE + OPEN_COUNT_MARGIN (intents.selectors), well inside one window.
KEEP_PAST_WINDOWS = 1
WINDOW_START_FIELD = ApiRateWindow._meta.get_field("window_start")


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after_s: float
    window_start: dt.datetime
    # The window's count with this request, as this transaction sees it (0 if refused).
    count: int = 0


def window_start_for(now: dt.datetime) -> dt.datetime:
    return now.replace(second=0, microsecond=0)


def rate_window_hit(*, tenant: Tenant, limit: int, now: dt.datetime) -> RateDecision:
    """Count one request in ``tenant``'s current window unless it is already full."""
    start = window_start_for(now)
    refused = RateDecision(
        allowed=False, retry_after_s=((start + WINDOW) - now).total_seconds(), window_start=start
    )
    if limit <= 0:
        return refused

    count = _increment_below_limit(tenant, start, limit)
    if count is not None:
        return RateDecision(allowed=True, retry_after_s=0, window_start=start, count=count)
    if ApiRateWindow.objects.filter(tenant=tenant, window_start=start).exists():
        # The row may have been opened by a concurrent request after our UPDATE missed
        # it; only an UPDATE that runs while the row exists can say the window is full.
        return _admitted(_increment_below_limit(tenant, start, limit), refused)
    try:
        with transaction.atomic():
            ApiRateWindow.objects.create(tenant=tenant, window_start=start, count=1)
    except IntegrityError:
        # Another process opened this window first: count against its row.
        return _admitted(_increment_below_limit(tenant, start, limit), refused)
    # Opening a window is the moment to drop this tenant's old ones (once a minute).
    ApiRateWindow.objects.filter(
        tenant=tenant, window_start__lt=start - KEEP_PAST_WINDOWS * WINDOW
    ).delete()
    return RateDecision(allowed=True, retry_after_s=0, window_start=start, count=1)


def _admitted(count: int | None, refused: RateDecision) -> RateDecision:
    if count is None:
        return refused
    return RateDecision(
        allowed=True, retry_after_s=0, window_start=refused.window_start, count=count
    )


def windows_count_since(
    *, tenant_id: int, since: dt.datetime, counted: RateDecision | None = None
) -> int:
    """Requests counted in the tenant's windows from the one holding ``since`` on.

    ``counted``: this transaction's admission in the current window, whose count it
    already holds, so only earlier windows are read (none when ``since`` falls in the
    current one). At most KEEP_PAST_WINDOWS + 1 rows of the unique (tenant,
    window_start) index.
    """
    first = window_start_for(since)
    if counted is None:
        sql, params = _sql()["count_since"], [tenant_id, _db_datetime(first)]
    elif first >= counted.window_start:
        return counted.count
    else:
        sql = _sql()["count_between"]
        params = [tenant_id, _db_datetime(first), _db_datetime(counted.window_start)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    earlier = int(row[0] or 0) if row else 0  # SUM of no rows is NULL
    return earlier + (counted.count if counted is not None else 0)


def _increment_below_limit(tenant: Tenant, start: dt.datetime, limit: int) -> int | None:
    """The window's new count, or None when the row is full or does not exist."""
    with connection.cursor() as cursor:
        cursor.execute(_sql()["increment"], [tenant.pk, _db_datetime(start), limit])
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def _db_datetime(value: dt.datetime) -> Any:
    """``value`` as the ORM would bind it for this column (naive UTC text on SQLite)."""
    return WINDOW_START_FIELD.get_db_prep_value(value, connection)


@cache
def _sql_for(vendor: str) -> dict[str, str]:
    qn = connection.ops.quote_name
    table = qn(ApiRateWindow._meta.db_table)
    tenant, start, count = (qn(_column(name)) for name in ("tenant", "window_start", "count"))
    # The new count comes back with the UPDATE: SQL Server names it in an OUTPUT clause
    # before WHERE, SQLite (3.35+) and PostgreSQL in RETURNING after it.
    output, returning = (
        (f" OUTPUT INSERTED.{count}", "") if vendor == "microsoft" else ("", f" RETURNING {count}")
    )
    # Identifiers from the model, quoted by the connection; every value is a parameter.
    return {
        "increment": (
            f"UPDATE {table} SET {count} = {count} + 1{output} "  # noqa: S608
            f"WHERE {tenant} = %s AND {start} = %s AND {count} < %s{returning}"
        ),
        "count_since": (
            f"SELECT SUM({count}) FROM {table} WHERE {tenant} = %s AND {start} >= %s"  # noqa: S608
        ),
        "count_between": (
            f"SELECT SUM({count}) FROM {table} "  # noqa: S608
            f"WHERE {tenant} = %s AND {start} >= %s AND {start} < %s"
        ),
    }


def _column(name: str) -> str:
    field = ApiRateWindow._meta.get_field(name)
    if not isinstance(field, models.Field) or field.column is None:
        raise TypeError(f"ApiRateWindow.{name} is not a column")
    return field.column


def _sql() -> dict[str, str]:
    return _sql_for(connection.vendor)
