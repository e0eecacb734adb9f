"""SQL Server parity mode on PostgreSQL: what mssql-django lacks fails loudly.

``tests.mssql.parity.parity_flags()`` imposes mssql-django's feature flags and guards
on the PostgreSQL connection (``make test-parity`` does it for the whole session with
``MSSQL_PARITY=1``). Each case runs once with the flags on, where it must raise
``NotSupportedError``, and once without, where PostgreSQL must accept it, so the
flags, and not some unrelated error, are what refuses it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any, cast

import pytest
from django.db import NotSupportedError, connection
from django.db.migrations.migration import Migration
from django.db.migrations.state import ProjectState
from django.db.models.fields.json import ContainedBy, DataContains

from portal.accounts.models import Tenant
from tests.mssql.parity import IMPOSED_FLAGS, mssql_feature_flags, parity_flags

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="parity mode imposes mssql-django's flags on PostgreSQL; "
        f"this run uses {connection.vendor}",
    ),
]

SESSION_PARITY = os.environ.get("MSSQL_PARITY") == "1"
without_session_parity = pytest.mark.skipif(
    SESSION_PARITY,
    reason="MSSQL_PARITY=1 imposes the flags for the whole session, so there is no "
    "'without the flags' run here (the plain PostgreSQL pass covers it)",
)

BAD = "tests.mssql.fixtures.bad_migrations"


def bad_migration(name: str) -> Migration:
    return importlib.import_module(f"{BAD}.{name}").Migration(name, "mssql_bad")


def apply(*migrations: Migration, state: ProjectState | None = None) -> ProjectState:
    """Apply fixture migrations to the test database (rolled back with the test)."""
    state = state or ProjectState()
    for migration in migrations:
        with connection.schema_editor() as editor:
            state = migration.apply(state, editor)
    return state


def table_model() -> Migration:
    """The fixture app's CreateModel alone, without the OR-filtered index of 0001."""
    first = bad_migration("0001_bad")
    migration = Migration("0001_table", "mssql_bad")
    # Migration.__init__ itself copies ``operations`` onto the instance; django-stubs
    # declares it a ClassVar.
    cast(Any, migration).operations = first.operations[:1]
    return migration


def index_names(table: str) -> set[str]:
    with connection.cursor() as cursor:
        return set(connection.introspection.get_constraints(cursor, table))


def try_bulk_ignore() -> list[Tenant]:
    return Tenant.objects.bulk_create(
        [Tenant(name="acme"), Tenant(name="globex")], ignore_conflicts=True
    )


def try_bulk_upsert() -> list[Tenant]:
    return Tenant.objects.bulk_create(
        [Tenant(name="acme", max_open_intents=7)],
        update_conflicts=True,
        unique_fields=["name"],
        update_fields=["max_open_intents"],
    )


def try_json_contains() -> bool:
    return Tenant.objects.filter(retry_overrides__contains={"max_attempts": 3}).exists()


def try_json_contained_by() -> bool:
    wide = {"max_attempts": 3, "initial_delay_s": 1}
    return Tenant.objects.filter(retry_overrides__contained_by=wide).exists()


def try_lock_of() -> list[Tenant]:
    return list(Tenant.objects.select_for_update(of=("self",)))


def try_distinct_on() -> list[str]:
    return list(Tenant.objects.order_by("name").distinct("name").values_list("name", flat=True))


# Each case returns something different; the tests branch on the case's name.
CASES: dict[str, Callable[[], Any]] = {
    "bulk_create(ignore_conflicts=True)": try_bulk_ignore,
    "bulk_create(update_conflicts=True)": try_bulk_upsert,
    "JSONField __contains": try_json_contains,
    "JSONField __contained_by": try_json_contained_by,
    "select_for_update(of=...)": try_lock_of,
    "distinct(*fields)": try_distinct_on,
}


def test_imposed_flags_are_mssql_djangos_values():
    with parity_flags() as imposed:
        assert imposed == mssql_feature_flags()
        for name in IMPOSED_FLAGS:
            assert getattr(connection.features, name) == imposed[name], name
    assert imposed["supports_ignore_conflicts"] is False
    assert imposed["supports_json_field_contains"] is False


@pytest.mark.parametrize("case", CASES, ids=str)
def test_missing_orm_feature_raises_with_the_flags(case):
    Tenant.objects.create(name="acme", max_open_intents=1, retry_overrides={"max_attempts": 3})
    with parity_flags(), pytest.raises(NotSupportedError):
        CASES[case]()
    assert list(Tenant.objects.values_list("name", "max_open_intents")) == [("acme", 1)]


@without_session_parity
@pytest.mark.parametrize("case", CASES, ids=str)
def test_missing_orm_feature_works_on_plain_postgresql(case):
    Tenant.objects.create(name="acme", max_open_intents=1, retry_overrides={"max_attempts": 3})
    result = CASES[case]()
    if case.startswith("JSONField"):
        assert result is True
    elif case in ("select_for_update(of=...)", "distinct(*fields)"):
        assert [getattr(row, "name", row) for row in result] == ["acme"]
    elif case == "bulk_create(update_conflicts=True)":
        assert Tenant.objects.get(name="acme").max_open_intents == 7
    else:
        assert sorted(Tenant.objects.values_list("name", flat=True)) == ["acme", "globex"]


def test_expression_index_migration_raises_with_the_flags():
    state = apply(table_model())
    with parity_flags(), pytest.raises(NotSupportedError, match="parcel_label_lower_idx"):
        apply(bad_migration("0002_bad_expression_index"), state=state)
    assert "parcel_label_lower_idx" not in index_names("mssql_bad_parcel")


def test_or_filtered_index_migration_raises_with_the_flags():
    with parity_flags(), pytest.raises(NotSupportedError, match="parcel_attention_idx"):
        apply(bad_migration("0001_bad"))


@without_session_parity
def test_bad_migrations_apply_on_plain_postgresql():
    apply(bad_migration("0001_bad"), bad_migration("0002_bad_expression_index"))
    names = index_names("mssql_bad_parcel")
    assert {"parcel_attention_idx", "parcel_label_lower_idx"} <= names


def test_flags_and_guards_are_restored_after_a_scoped_install():
    def snapshot() -> tuple:
        flags = {name: getattr(connection.features, name) for name in IMPOSED_FLAGS}
        guards = [vars(lookup).get("as_postgresql") for lookup in (DataContains, ContainedBy)]
        return flags, guards, vars(connection.SchemaEditorClass).get("add_index")

    before = snapshot()
    with parity_flags():
        assert snapshot() != before
    assert snapshot() == before


def test_bulk_create_returns_no_primary_keys_with_the_flags():
    """mssql-django cannot return rows from a bulk insert: code must not rely on the pks."""
    with parity_flags():
        created = Tenant.objects.bulk_create([Tenant(name="acme"), Tenant(name="globex")])
    assert [tenant.pk for tenant in created] == [None, None]
    assert Tenant.objects.count() == 2


@without_session_parity
def test_bulk_create_returns_primary_keys_on_plain_postgresql():
    created = Tenant.objects.bulk_create([Tenant(name="acme"), Tenant(name="globex")])
    assert all(tenant.pk for tenant in created)
