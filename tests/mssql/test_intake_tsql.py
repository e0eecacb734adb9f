"""The intake's rate and quota statements as mssql-django sends them (see test_hot_queries_tsql)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlglot
from sqlglot import exp

from intents import rate_window, selectors
from intents.intake_insert import insert_intent
from intents.models import Intent
from portal.accounts.models import Tenant

from .offline import SQL_SERVER_VERSIONS, OfflineCursor, as_default
from .query_shape import fit, shape

SINCE = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)
SINCE_MID_MINUTE = SINCE + dt.timedelta(seconds=42)

pytestmark = pytest.mark.parametrize("version", SQL_SERVER_VERSIONS, ids=lambda v: f"sql{v}")


def sent(version, call) -> tuple[str, tuple]:
    with as_default(version) as connection:
        call()
    [(sql, params)] = [
        (sql, tuple(params or ()))
        for sql, params in connection.catalog_queries
        if not sql.startswith(("SELECT @@TRANCOUNT", "SAVE TRANSACTION"))
    ]
    return sql, params


def inner_select(sql: str, params: tuple):
    """The TOP n subquery a sliced ``count()`` wraps in ``SELECT COUNT_BIG(*) FROM (...)``."""
    tree = sqlglot.parse_one(sql, read="tsql")
    assert "OFFSET" not in sql.upper() and "ORDER BY" not in sql.upper(), sql
    subquery = tree.find(exp.Subquery)
    assert subquery is not None, sql
    return shape(subquery.this.sql(dialect="tsql"), params)


def test_the_quota_bound_reads_the_tenant_rate_windows_by_their_unique_key(version):
    sql, params = sent(
        version, lambda: rate_window.windows_count_since(tenant_id=3, since=SINCE_MID_MINUTE)
    )
    assert sql == (
        "SELECT SUM([count]) FROM [intents_apiratewindow] "
        "WHERE [tenant_id] = ? AND [window_start] >= ?"
    )
    # From the start of the minute that holds `since`: that window may hold intents
    # created after it.
    assert params[0] == 3 and params[1].replace(tzinfo=None) == SINCE.replace(tzinfo=None)


def test_the_rate_count_is_one_conditional_update_of_the_window_row(version):
    tenant = Tenant(pk=3, name="t")
    sql, params = sent(version, lambda: rate_window._increment_below_limit(tenant, SINCE, 600))
    # The new count comes back in an OUTPUT clause (SQL Server has no RETURNING).
    assert sql == (
        "UPDATE [intents_apiratewindow] SET [count] = [count] + 1 OUTPUT INSERTED.[count] "
        "WHERE [tenant_id] = ? AND [window_start] = ? AND [count] < ?"
    )
    assert params[0] == 3 and params[2] == 600
    sqlglot.parse_one(sql, read="tsql")  # well-formed T-SQL


def test_with_this_request_counted_the_bound_reads_only_the_earlier_window(version):
    counted = rate_window.RateDecision(
        allowed=True, retry_after_s=0, window_start=SINCE + dt.timedelta(minutes=1), count=7
    )
    sql, params = sent(
        version,
        lambda: rate_window.windows_count_since(
            tenant_id=3, since=SINCE_MID_MINUTE, counted=counted
        ),
    )
    assert sql == (
        "SELECT SUM([count]) FROM [intents_apiratewindow] "
        "WHERE [tenant_id] = ? AND [window_start] >= ? AND [window_start] < ?"
    )
    assert params[0] == 3
    assert params[1].replace(tzinfo=None) == SINCE.replace(tzinfo=None)
    assert params[2].replace(tzinfo=None) == counted.window_start.replace(tzinfo=None)


def test_the_intent_insert_is_the_statement_save_sends(version):
    """Compiled once, it is still mssql-django's: SCOPE_IDENTITY returns the id."""

    def intent() -> Intent:
        return Intent(
            public_id=uuid.UUID(int=7),
            tenant_id=3,
            idempotency_key="k",
            target_id=4,
            target_key="sms.otp",
            contract_version="1.2",
            target_revision_id=5,
            contract={"version": "1.2"},
            payload=b"{}",
            payload_sha256="0" * 64,
            metadata={"order": "A-17"},
            max_attempts=3,
            attempt_timeout_s=5.0,
            next_attempt_at=SINCE,
            deadline_at=SINCE,
            created_at=SINCE,
            updated_at=SINCE,
        )

    by_save, by_insert = intent(), intent()
    saved = sent(version, lambda: by_save.save(force_insert=True))
    inserted = sent(version, lambda: insert_intent(by_insert))
    assert inserted == saved
    assert inserted[0].startswith("SET NOCOUNT ON INSERT INTO [intents_intent] (")
    assert inserted[0].endswith("; SELECT CAST(SCOPE_IDENTITY() AS bigint)")
    assert by_insert.pk == by_save.pk == OfflineCursor.NEW_ID


def test_exact_count_reads_at_most_the_cap(version):
    sql, params = sent(version, lambda: selectors.open_intent_count_exact(tenant_id=3, cap=500))
    statement = inner_select(sql, params)
    due = fit(statement, Intent, "intent_tenant_due_idx")

    assert statement.conjunctive
    assert statement.top == 500
    assert due.equality_prefix == ("tenant_id", "status")
