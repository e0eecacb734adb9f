"""The open-intent quota's statements as mssql-django sends them (see test_hot_queries_tsql)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlglot
from sqlglot import exp

from intents import selectors
from intents.models import Intent

from .offline import SQL_SERVER_VERSIONS, as_default
from .query_shape import Bound, fit, shape

SINCE = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)

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


def test_recent_intake_seeks_the_tenant_created_index(version):
    sql, params = sent(
        version,
        lambda: selectors.intents_created_since_reach(tenant_id=3, since=SINCE, limit=40),
    )
    statement = inner_select(sql, params)
    created = fit(statement, Intent, "intent_tenant_created_idx")

    assert statement.conjunctive
    assert statement.top == 40  # reads at most the headroom
    assert created.equality_prefix == ("tenant_id",)
    assert created.range_column == "created_at"
    assert statement.predicates["created_at"] == [(">=", Bound(SINCE))]
    assert created.usable_by_cached_plan


def test_exact_count_reads_at_most_the_cap(version):
    sql, params = sent(version, lambda: selectors.open_intent_count_exact(tenant_id=3, cap=500))
    statement = inner_select(sql, params)
    due = fit(statement, Intent, "intent_tenant_due_idx")

    assert statement.conjunctive
    assert statement.top == 500
    assert due.equality_prefix == ("tenant_id", "status")
