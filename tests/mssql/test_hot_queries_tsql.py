"""The hot queries as mssql-django sends them to SQL Server, compiled offline.

The real code runs against an offline mssql-django connection installed as the
``default`` alias (``offline.as_default``): the dispatcher's ``claim_batch``, the
selectors of the sweeper, of submission and of the dead-letter lists. Each executed
statement is recorded in the form the driver receives, parsed with sqlglot's
``tsql`` dialect, and compared with the indexes the models declare.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import cast

import pytest
import sqlglot

from deadletters import selectors as deadletter_selectors
from deadletters.filters import ReplayFilters
from deadletters.models import DeadLetter, DeadLetterStatus
from intents import dispatch, execution
from intents import selectors as intent_selectors
from intents.models import Intent, IntentStatus, ReasonCode
from portal import clock

from .offline import SQL_SERVER_VERSIONS, as_default
from .query_shape import Bound, QueryShape, best_cached_plan_index, fit, shape

NOW = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)
SKIP_LOCKED_HINTS = ("ROWLOCK", "UPDLOCK", "READPAST")
# The exact text mssql-django's DatabaseOperations.for_update_sql(skip_locked=True) emits.
SKIP_LOCKED_SQL = "WITH (ROWLOCK, UPDLOCK, READPAST)"

pytestmark = pytest.mark.parametrize("version", SQL_SERVER_VERSIONS, ids=lambda v: f"sql{v}")


def queries(connection) -> list[tuple[str, tuple]]:
    """What the code sent, minus mssql-django's transaction bookkeeping."""
    return [
        (sql, tuple(params or ()))
        for sql, params in connection.catalog_queries
        if not sql.startswith(("SELECT @@TRANCOUNT", "SAVE TRANSACTION"))
    ]


def only_statement(connection, table: str) -> QueryShape:
    sent = [shape(sql, params) for sql, params in queries(connection)]
    found = [s for s in sent if s.table == table]
    assert len(found) == 1, f"expected one statement on {table}, got {[s.sql for s in sent]}"
    return found[0]


def assert_plain_tsql(found: QueryShape) -> None:
    assert not isinstance(found.tree, sqlglot.exp.Command), found.sql
    assert found.conjunctive, f"WHERE has OR/NOT/functions: {found.sql}"


# --- The dispatcher's claim ---------------------------------------------------------


def claim_statements(version: int, *, tenant_ids: list[int], batch_size: int) -> list[QueryShape]:
    with as_default(version) as connection, clock.override(NOW):
        claimed = dispatch.claim_batch(
            tenant_ids=tenant_ids, batch_size=batch_size, worker_id="w-1", lease_margin_s=5
        )
    assert claimed is None  # the offline server has no rows: nothing leased
    return [shape(sql, params) for sql, params in queries(connection)]


def test_claim_takes_row_update_locks_and_skips_locked_rows(version):
    # A lone tenant is claimed with one seek (a tenant with a small backlog among others
    # goes through the ranked query and then lock_due_intents, below).
    statements = claim_statements(version, tenant_ids=[7], batch_size=10)

    with as_default(version) as connection:
        assert connection.ops.for_update_sql(skip_locked=True) == SKIP_LOCKED_SQL

    assert [s.table for s in statements] == ["intents_intent"]
    (statement,) = statements
    assert_plain_tsql(statement)
    assert statement.hints == SKIP_LOCKED_HINTS
    assert f"FROM [intents_intent] {SKIP_LOCKED_SQL} WHERE" in statement.sql
    assert statement.top == 10
    assert statement.predicates["tenant_id"] == [("=", Bound(7))]


def test_chosen_intents_are_locked_by_primary_key_skipping_locked_rows(version):
    with as_default(version) as connection:
        list(intent_selectors.lock_due_intents(ids=[11, 12], now=NOW))
    statement = only_statement(connection, "intents_intent")

    assert_plain_tsql(statement)
    assert statement.hints == SKIP_LOCKED_HINTS
    assert statement.predicates["id"] == [("IN", (Bound(11), Bound(12)))]


def test_tenants_with_small_backlogs_are_ranked_in_one_window_query(version):
    """Several tenants' shares in one statement: ROW_NUMBER per tenant, filtered outside."""
    statements = claim_statements(version, tenant_ids=[7, 9, 11], batch_size=10)
    assert len(statements) == 1  # the offline server ranks nothing: no lock follows
    (statement,) = statements
    assert not isinstance(statement.tree, sqlglot.exp.Command), statement.sql
    sql = statement.sql
    by_tenant = "OVER (PARTITION BY [intents_intent].[tenant_id]"
    assert f"ROW_NUMBER() {by_tenant} ORDER BY [intents_intent].[next_attempt_at] ASC" in sql
    assert f"COUNT_BIG([intents_intent].[id]) {by_tenant}" in sql
    assert "[intents_intent].[tenant_id] IN (?, ?, ?)" in sql
    assert "[intents_intent].[next_attempt_at] <= ?" in sql
    assert "UPDLOCK" not in sql  # locked afterwards, by primary key
    assert statement.predicates == {"rank": [("<=", Bound(4))]}  # its share (3) plus one


def test_the_look_for_due_tenants_is_a_range_on_intent_status_due_idx(version):
    with as_default(version) as connection:
        intent_selectors.tenants_with_due_work(now=NOW, since=NOW - dt.timedelta(seconds=2))
    sent = [shape(sql, params) for sql, params in queries(connection)]
    (statement,) = [s for s in sent if s.table == "intents_intent"]
    due = fit(statement, Intent, "intent_status_due_idx")

    assert due.equality_prefix == ("status",)
    assert due.range_column == "next_attempt_at"
    assert sorted(statement.predicates["next_attempt_at"], key=str) == sorted(
        [(">", Bound(NOW - dt.timedelta(seconds=2))), ("<=", Bound(NOW))], key=str
    )


def test_claim_states_intent_due_idx_keys_and_filter(version):
    """The claim's WHERE and ORDER BY are exactly intent_due_idx's shape."""
    (statement, *_) = claim_statements(version, tenant_ids=[7], batch_size=3)
    due = fit(statement, Intent, "intent_due_idx")

    assert due.columns == ("tenant_id", "next_attempt_at")
    assert due.equality_prefix == ("tenant_id",)
    assert due.range_column == "next_attempt_at"
    assert statement.predicates["next_attempt_at"] == [("<=", Bound(NOW))]
    assert due.delivers_order, statement.order_by  # TOP n stops after n rows, no sort
    assert due.filter_columns == ("status",)
    assert due.filter_repeated  # status = 'pending' is stated, so the index qualifies
    assert statement.top == 3


def sweeper_statement(version: int) -> QueryShape:
    with as_default(version) as connection:
        list(intent_selectors.expired_leases(now=NOW, limit=50))
    return only_statement(connection, "intents_intent")


@pytest.mark.parametrize("query", ["claim", "sweeper"])
def test_hot_query_is_served_by_an_index_a_parameterized_plan_can_use(version, query):
    if query == "claim":
        (statement, *_) = claim_statements(version, tenant_ids=[7], batch_size=3)
    else:
        statement = sweeper_statement(version)
    chosen, fits = best_cached_plan_index(statement, Intent)
    assert chosen is not None, fits
    expected = {"claim": "intent_tenant_due_idx", "sweeper": "intent_status_lease_idx"}
    assert chosen.index == expected[query], fits


def test_lease_update_targets_claimed_rows_by_primary_key(version):
    claimed = [SimpleNamespace(id=n, attempt_timeout_s=5.0) for n in (11, 12)]
    with as_default(version) as connection:
        # _lease reads only .id and .attempt_timeout_s; stand-ins suffice.
        dispatch._lease(cast("list[Intent]", claimed), token="w-1:abc", now=NOW, lease_margin_s=2)
    statement = only_statement(connection, "intents_intent")

    assert isinstance(statement.tree, sqlglot.exp.Update)
    assert statement.predicates["id"] == [("IN", (Bound(11), Bound(12)))]
    assert list(statement.predicates) == ["id"]


# --- Recording outcomes -----------------------------------------------------------


def test_recorded_states_are_one_update_by_primary_key_per_intent(version):
    recorded = [
        Intent(
            id=n,
            status=IntentStatus.ACCEPTED,
            attempts_count=1,
            lease_owner="",
            reason_code=ReasonCode.GATEWAY_ACCEPTED,
            gateway_message_id=f"m-{n}",
            finished_at=NOW,
            updated_at=NOW,
        )
        for n in (11, 12)
    ]
    with as_default(version) as connection:
        execution._write_states(recorded)
    [(sql, rows)] = [(sql, p) for sql, p in connection.catalog_queries if "UPDATE" in sql]
    statement = shape(sql, rows[0])

    assert isinstance(statement.tree, sqlglot.exp.Update)
    assert_plain_tsql(statement)
    assert statement.table == "intents_intent"
    assert list(statement.predicates) == ["id"]
    assert statement.predicates["id"] == [("=", Bound(11))]
    assert [row[-1] for row in rows] == [11, 12]  # one parameter row per intent
    assert len(rows[0]) == len(execution.RECORDED_FIELDS) + 1


# --- The sweeper -----------------------------------------------------------------


def test_lease_expiry_locks_like_the_claim_and_states_intent_lease_idx(version):
    statement = sweeper_statement(version)
    lease = fit(statement, Intent, "intent_lease_idx")

    assert_plain_tsql(statement)
    assert statement.hints == SKIP_LOCKED_HINTS
    assert statement.top == 50
    assert lease.range_column == "lease_expires_at"
    assert statement.predicates["lease_expires_at"] == [("<", Bound(NOW))]
    assert lease.delivers_order
    assert lease.filter_columns == ("status",)
    assert statement.predicates["status"] == [("=", Bound(IntentStatus.IN_FLIGHT))]
    assert lease.filter_repeated


# --- Submission -----------------------------------------------------------------


def test_idempotency_lookup_seeks_the_tenant_key_unique_index(version):
    with as_default(version) as connection:
        assert intent_selectors.intent_by_idempotency_key(tenant_id=3, key="order-17") is None
    statement = only_statement(connection, "intents_intent")
    unique = fit(statement, Intent, "uniq_intent_tenant_idem_key")

    assert_plain_tsql(statement)
    assert statement.hints == ()  # a plain read: no lock hints
    assert statement.top == 1
    assert unique.equality_prefix == ("tenant_id", "idempotency_key")
    assert statement.predicates["idempotency_key"] == [("=", Bound("order-17"))]
    assert best_cached_plan_index(statement, Intent)[0] is not None


# --- Dead-letter lists -------------------------------------------------------------

DEAD_LETTER_LISTS = {
    "by reason": (
        ReplayFilters(reason_code=ReasonCode.GATEWAY_REJECTED),
        "dl_status_reason_idx",
        ("status", "reason_code"),
    ),
    "by reason, tenant and time range": (
        ReplayFilters(
            reason_code=ReasonCode.ATTEMPTS_EXHAUSTED,
            tenant_id=4,
            since=NOW - dt.timedelta(days=1),
            until=NOW,
        ),
        "dl_status_reason_idx",
        ("status", "reason_code"),
    ),
    "by target": (
        ReplayFilters(target_key="sms.otp"),
        "dl_target_idx",
        ("target_key",),
    ),
}


@pytest.mark.parametrize("case", DEAD_LETTER_LISTS, ids=str)
def test_dead_letter_list_filters_seek_an_index_in_list_order(version, case):
    filters, index_name, prefix = DEAD_LETTER_LISTS[case]
    with as_default(version) as connection:
        list(deadletter_selectors.open_dead_letters_matching(filters=filters)[:20])
    statement = only_statement(connection, "deadletters_deadletter")
    chosen, fits = best_cached_plan_index(statement, DeadLetter)

    assert_plain_tsql(statement)
    assert statement.predicates["status"] == [("=", Bound(DeadLetterStatus.OPEN))]
    assert statement.order_by == (("created_at", False), ("id", False))
    assert chosen is not None, fits
    assert (chosen.index, chosen.equality_prefix) == (index_name, prefix)
    assert chosen.delivers_order  # created_at, then the clustered key: no sort
    if filters.since:
        assert chosen.range_column == "created_at"


def test_index_judgement_rejects_a_query_the_index_cannot_order(version):
    """The fitting rules are not vacuous: ordering by a non-key column needs a sort."""
    with as_default(version) as connection:
        list(DeadLetter.objects.filter(status=DeadLetterStatus.OPEN).order_by("updated_at")[:5])
    statement = only_statement(connection, "deadletters_deadletter")

    assert not fit(statement, DeadLetter, "dl_status_reason_idx").delivers_order
    assert best_cached_plan_index(statement, DeadLetter)[0] is None


def test_a_literal_filter_value_would_let_a_cached_plan_use_intent_due_idx(version):
    """The filtered index is disqualified only by the bound status: the same claim with
    the status written as a constant qualifies for intent_due_idx."""
    (claim, *_) = claim_statements(version, tenant_ids=[7], batch_size=3)
    assert claim.predicates["status"] == [("=", Bound(IntentStatus.PENDING))]
    bound_status = "[intents_intent].[status] = ?"
    position = claim.sql[: claim.sql.index(bound_status)].count("?")
    params = list(claim.params)
    del params[position]
    literal = shape(claim.sql.replace(bound_status, bound_status[:-1] + "N'pending'"), params)

    chosen, fits = best_cached_plan_index(literal, Intent)
    assert chosen is not None, fits
    assert chosen.index == "intent_due_idx"
