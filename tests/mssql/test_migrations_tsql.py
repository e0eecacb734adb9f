"""Every migration of every installed app, rendered as T-SQL by mssql-django, offline.

The whole plan (ours, Django's, django-q2's, django-otp's, axes', the API-key app's)
goes through mssql-django's schema editor with ``collect_sql=True``, as
``manage.py sqlmigrate`` would on SQL Server 2019 and 2022; each statement must parse
with sqlglot's ``tsql`` dialect and pass the checks in ``tsql_check`` (filtered-index
grammar, column keys, type lengths, index key sizes). A failure names the app, the
migration and its file. Migrations that SQL Server rejects, kept as fixtures and never
applied, prove the check can fail.
"""

from __future__ import annotations

import importlib
from functools import cache

import pytest
from django.apps import apps
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration
from django.db.migrations.state import ProjectState

from .offline import SQL_SERVER_VERSIONS, offline_connection
from .tsql_check import (
    Problem,
    Statement,
    check_migrations,
    full_plan,
    mssql_template,
    parse_tsql,
    report,
)

BAD_PACKAGE = "tests.mssql.fixtures.bad_migrations"
BAD_APP = "mssql_bad"
BAD_OR_FILTER = "tests/mssql/fixtures/bad_migrations/0001_bad.py"
BAD_EXPRESSION = "tests/mssql/fixtures/bad_migrations/0002_bad_expression_index.py"


@cache
def loaded() -> tuple[MigrationLoader, tuple[Migration, ...]]:
    loader, plan = full_plan()
    return loader, tuple(plan)


@cache
def rendered(version: int) -> tuple[tuple[Statement, ...], tuple[Problem, ...]]:
    """The full plan rendered once per SQL Server version (about a second each)."""
    _, plan = loaded()
    statements, problems = check_migrations(offline_connection(version), plan, ProjectState())
    return tuple(statements), tuple(problems)


def migrated_app_labels() -> list[str]:
    """Apps with at least one migration file (an empty migrations package has none)."""
    loader, _ = loaded()
    return sorted({app_label for app_label, _ in loader.disk_migrations})


@pytest.mark.parametrize("version", SQL_SERVER_VERSIONS, ids=lambda v: f"sql{v}")
def test_plan_covers_every_installed_app_with_migrations(version):
    loader, plan = loaded()
    installed = {config.label for config in apps.get_app_configs()}
    planned = {migration.app_label for migration in plan}

    assert planned == set(migrated_app_labels())
    assert planned <= installed
    # The third-party apps the brief names are really in the plan, not silently absent.
    assert {"intents", "deadletters", "audit", "accounts", "django_q", "otp_totp"} <= planned
    assert {"auth", "admin", "axes", "rest_framework_api_key"} <= planned
    assert len(plan) == len(loader.graph.nodes)  # a fresh database applies every one
    statements, _ = rendered(version)
    assert {s.migration.split(".")[0] for s in statements} <= planned


@pytest.mark.parametrize("version", SQL_SERVER_VERSIONS, ids=lambda v: f"sql{v}")
@pytest.mark.parametrize("app_label", migrated_app_labels())
def test_app_migrations_are_valid_tsql_sql_server_can_build(version, app_label):
    statements, problems = rendered(version)
    mine = [p for p in problems if p.migration.split(".")[0] == app_label]
    assert not mine, report(mine)
    # Every statement of the app was really parsed (or is one of mssql-django's own
    # fixed T-SQL batches), not skipped.
    for statement in statements:
        if statement.migration.split(".")[0] == app_label and not mssql_template(statement.sql):
            trees, _ = parse_tsql(statement.sql)
            assert trees, statement


def test_intent_claim_indexes_render_as_and_only_filtered_indexes():
    statements, _ = rendered(2022)
    sql = {s.sql for s in statements if s.migration.startswith("intents.")}

    assert (
        "CREATE INDEX [intent_due_idx] ON [intents_intent] ([tenant_id], [next_attempt_at]) "
        "WHERE [status] = 'pending';" in sql
    )
    assert (
        "CREATE INDEX [intent_lease_idx] ON [intents_intent] ([lease_expires_at]) "
        "WHERE [status] = 'in_flight';" in sql
    )


# --- The check fails on what SQL Server rejects -------------------------------------


def bad_migrations() -> list:
    names = ("0001_bad", "0002_bad_expression_index")
    return [
        importlib.import_module(f"{BAD_PACKAGE}.{name}").Migration(name, BAD_APP) for name in names
    ]


def test_bad_migrations_are_not_part_of_any_app():
    loader, _ = loaded()
    assert BAD_APP not in loader.migrated_apps
    assert not [key for key in loader.disk_migrations if key[0] == BAD_APP]


def test_or_filtered_index_fails_naming_the_migration_file():
    _, problems = check_migrations(offline_connection(), bad_migrations(), ProjectState())
    or_problems = [p for p in problems if p.path == BAD_OR_FILTER]
    text = report(or_problems)

    assert or_problems, report(problems)
    assert "parcel_attention_idx" in text
    assert "OR" in text
    # Both layers caught it: the operation (Q(...) | Q(...)) and the rendered T-SQL.
    assert any(p.sql.startswith("CREATE INDEX [parcel_attention_idx]") for p in or_problems)
    assert any(not p.sql for p in or_problems)
    assert f"{BAD_OR_FILTER} ({BAD_APP}.0001_bad)" in text


def test_expression_index_fails_naming_the_migration_file():
    statements, problems = check_migrations(offline_connection(), bad_migrations(), ProjectState())
    expression = [p for p in problems if p.path == BAD_EXPRESSION]
    text = report(expression)

    assert expression, report(problems)
    assert "parcel_label_lower_idx" in text
    assert "expression" in text
    assert f"{BAD_EXPRESSION} ({BAD_APP}.0002_bad_expression_index)" in text
    # mssql-django renders nothing for it: without the operation layer it would vanish.
    assert not [s for s in statements if "parcel_label_lower_idx" in s.sql]
