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
The open-intent quota's estimate relies on that (``windows_count_since``). The two
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


def window_start_for(now: dt.datetime) -> dt.datetime:
    return now.replace(second=0, microsecond=0)


def rate_window_hit(*, tenant: Tenant, limit: int, now: dt.datetime) -> RateDecision:
    """Count one request in ``tenant``'s current window unless it is already full."""
    start = window_start_for(now)
    retry_after = ((start + WINDOW) - now).total_seconds()
    if limit <= 0:
        return RateDecision(allowed=False, retry_after_s=retry_after)

    if _increment_below_limit(tenant, start, limit):
        return RateDecision(allowed=True, retry_after_s=0)
    if ApiRateWindow.objects.filter(tenant=tenant, window_start=start).exists():
        # The row may have been opened by a concurrent request after our UPDATE missed
        # it; only an UPDATE that runs while the row exists can say the window is full.
        allowed = _increment_below_limit(tenant, start, limit)
        return RateDecision(allowed=allowed, retry_after_s=0 if allowed else retry_after)
    try:
        with transaction.atomic():
            ApiRateWindow.objects.create(tenant=tenant, window_start=start, count=1)
    except IntegrityError:
        # Another process opened this window first: count against its row.
        allowed = _increment_below_limit(tenant, start, limit)
        return RateDecision(allowed=allowed, retry_after_s=0 if allowed else retry_after)
    # Opening a window is the moment to drop this tenant's old ones (once a minute).
    ApiRateWindow.objects.filter(
        tenant=tenant, window_start__lt=start - KEEP_PAST_WINDOWS * WINDOW
    ).delete()
    return RateDecision(allowed=True, retry_after_s=0)


def windows_count_since(*, tenant_id: int, since: dt.datetime) -> int:
    """Requests counted in the tenant's windows from the one holding ``since`` on.

    At most KEEP_PAST_WINDOWS + 1 rows of the unique (tenant, window_start) index.
    """
    with connection.cursor() as cursor:
        cursor.execute(_sql()["count_since"], [tenant_id, _db_datetime(window_start_for(since))])
        row = cursor.fetchone()
    return int(row[0] or 0) if row else 0  # SUM of no rows is NULL


def _increment_below_limit(tenant: Tenant, start: dt.datetime, limit: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(_sql()["increment"], [tenant.pk, _db_datetime(start), limit])
        return cursor.rowcount == 1


def _db_datetime(value: dt.datetime) -> Any:
    """``value`` as the ORM would bind it for this column (naive UTC text on SQLite)."""
    return WINDOW_START_FIELD.get_db_prep_value(value, connection)


@cache
def _sql_for(vendor: str) -> dict[str, str]:
    qn = connection.ops.quote_name
    table = qn(ApiRateWindow._meta.db_table)
    tenant, start, count = (qn(_column(name)) for name in ("tenant", "window_start", "count"))
    # Identifiers from the model, quoted by the connection; every value is a parameter.
    return {
        "increment": (
            f"UPDATE {table} SET {count} = {count} + 1 "  # noqa: S608
            f"WHERE {tenant} = %s AND {start} = %s AND {count} < %s"
        ),
        "count_since": (
            f"SELECT SUM({count}) FROM {table} WHERE {tenant} = %s AND {start} >= %s"  # noqa: S608
        ),
    }


def _column(name: str) -> str:
    field = ApiRateWindow._meta.get_field(name)
    if not isinstance(field, models.Field) or field.column is None:
        raise TypeError(f"ApiRateWindow.{name} is not a column")
    return field.column


def _sql() -> dict[str, str]:
    return _sql_for(connection.vendor)
