"""Render migrations through mssql-django's schema editor offline and find what SQL Server rejects.

Two independent layers look at every migration:

* the operations: each Index / UniqueConstraint / field an operation creates is
  checked against what SQL Server can build (``tests.mssql.parity``'s rules, plus
  index key sizes computed from mssql-django's column types);
* the T-SQL: every collected statement must parse with sqlglot's ``tsql``
  dialect, and the parsed CREATE INDEX / column types are checked again
  (filtered-index grammar, expression keys, type lengths, identifier lengths).

Statements are rendered the way ``manage.py sqlmigrate`` renders them
(``collect_sql=True``), one schema editor per migration, so deferred SQL (foreign
keys, indexes) appears at the end of its migration as it would on a server.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import sqlglot
from django.conf import settings
from django.db import models
from django.db.migrations import operations as ops
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration
from django.db.migrations.state import ProjectState
from django.db.models.options import Options
from mssql.schema import DatabaseSchemaEditor as MssqlSchemaEditor
from sqlglot import exp

from tests.mssql.parity import field_problems, index_problems, model_problems

from .offline import OfflineSqlServer, registered

DEFERRED = "deferred SQL at the end of the migration"
MAX_IDENTIFIER = 128
NONCLUSTERED_KEY_BYTES = 1700  # SQL Server 2016+
CLUSTERED_KEY_BYTES = 900


@dataclass(frozen=True)
class Statement:
    migration: str
    path: str
    operation: str
    sql: str


@dataclass(frozen=True)
class Problem:
    migration: str
    path: str
    operation: str
    message: str
    sql: str = ""

    def __str__(self) -> str:
        text = f"{self.path} ({self.migration}), {self.operation}: {self.message}"
        return text + (f"\n      {self.sql}" if self.sql else "")


def migration_path(migration: Migration) -> str:
    """The migration's file, relative to the project (or to site-packages)."""
    module = sys.modules[type(migration).__module__]
    path = Path(inspect.getfile(module)).resolve()
    for root in (Path(settings.BASE_DIR), *(Path(p) for p in sys.path if "site-packages" in p)):
        if path.is_relative_to(root):
            return str(path.relative_to(root))
    return str(path)


def migration_label(migration: Migration) -> str:
    return f"{migration.app_label}.{migration.name}"


def full_plan() -> tuple[MigrationLoader, list[Migration]]:
    """Every migration of every installed app, in the order a fresh database applies them."""
    executor = MigrationExecutor(None)  # no connection: nothing is recorded as applied
    loader = executor.loader
    plan = executor.migration_plan(loader.graph.leaf_nodes(), clean_start=True)
    return loader, [migration for migration, backwards in plan if not backwards]


# --- Rendering and the operation layer ---------------------------------------------


def _key_bytes(connection: OfflineSqlServer, field: models.Field) -> int:
    db_type = (field.db_type(connection) or "").lower()
    fixed = {
        "bit": 1,
        "tinyint": 1,
        "smallint": 2,
        "int": 4,
        "bigint": 8,
        "real": 4,
        "double precision": 8,
        "float": 8,
        "date": 3,
        "time": 5,
        "datetime": 8,
        "datetime2": 8,
        "datetimeoffset": 10,
        "uniqueidentifier": 16,
    }
    if db_type in fixed:
        return fixed[db_type]
    if match := re.fullmatch(r"(n?)(?:var)?(?:char|binary)\((\d+)\)", db_type):
        return int(match[2]) * (2 if match[1] else 1)
    if db_type.startswith("numeric"):
        return 17
    return 0


def _key_field(meta: Options[Any], name: str) -> models.Field[Any, Any]:
    """A field an index key names: a concrete field, never a reverse relation."""
    field = meta.get_field(name)
    assert isinstance(field, models.Field)
    return field


def key_size_problems(connection: OfflineSqlServer, model: type[models.Model]) -> list[str]:
    """Index keys wider than SQL Server allows (inserts of long values would fail)."""
    keys: list[tuple[str, list[models.Field], int]] = []
    meta = model._meta
    for field in meta.local_concrete_fields:
        if field.primary_key:
            keys.append((f"primary key {field.name}", [field], CLUSTERED_KEY_BYTES))
        # db_index is set in Field.__init__ but django-stubs does not declare it.
        elif field.unique or cast(Any, field).db_index:
            keys.append((f"{field.name} (unique/db_index)", [field], NONCLUSTERED_KEY_BYTES))
    for index in [*meta.indexes, *meta.constraints]:
        names: Sequence[str] = [f.lstrip("-") for f in getattr(index, "fields", ())]
        if names and not isinstance(index, models.CheckConstraint):
            fields = [_key_field(meta, name) for name in names]
            keys.append((repr(index.name), fields, NONCLUSTERED_KEY_BYTES))
    for names in meta.unique_together:
        fields = [_key_field(meta, name) for name in names]
        keys.append((f"unique_together {names}", fields, NONCLUSTERED_KEY_BYTES))
    problems = []
    for what, fields, limit in keys:
        width = sum(_key_bytes(connection, f) for f in fields)
        if width > limit:
            problems.append(
                f"{meta.label} {what}: key is {width} bytes, over SQL Server's {limit}; "
                "rows with long values could not be inserted"
            )
    return problems


def operation_problems(
    connection: OfflineSqlServer, app_label: str, operation: Any, state: ProjectState
) -> list[str]:
    """What the objects this operation creates would do on SQL Server (state = after it)."""
    name = getattr(operation, "model_name", None) or getattr(operation, "name", None)
    if not isinstance(operation, ops.base.Operation) or name is None:
        return []
    try:
        model = state.apps.get_model(app_label, name)
    except LookupError:
        return []
    if isinstance(operation, ops.CreateModel):
        return model_problems(model) + key_size_problems(connection, model)
    if isinstance(operation, ops.AddIndex):
        return index_problems(model, operation.index) + key_size_problems(connection, model)
    if isinstance(operation, ops.AddConstraint):
        problems = key_size_problems(connection, model)
        if isinstance(operation.constraint, models.UniqueConstraint):
            problems = index_problems(model, operation.constraint) + problems
        return problems
    if isinstance(operation, ops.AddField | ops.AlterField):
        field = model._meta.get_field(operation.name)
        return field_problems(model, field) + key_size_problems(connection, model)
    if isinstance(operation, ops.AlterUniqueTogether):
        return model_problems(model) + key_size_problems(connection, model)
    return []


def render_migrations(
    connection: OfflineSqlServer, migrations: Sequence[Migration], state: ProjectState
) -> tuple[list[Statement], list[Problem], ProjectState]:
    """Collect each migration's T-SQL, as sqlmigrate would, plus the operation-layer problems.

    Mirrors ``Migration.apply(collect_sql=True)`` one operation at a time, so the
    offline catalog can describe the schema as it stands before each operation.
    """
    statements: list[Statement] = []
    problems: list[Problem] = []
    with registered(connection):
        for migration in migrations:
            label, path = migration_label(migration), migration_path(migration)
            with connection.schema_editor(collect_sql=True, atomic=False) as editor:
                for operation in migration.operations:
                    described = operation.describe()
                    if not operation.reduces_to_sql:  # RunPython: data, not schema
                        continue
                    before = state.clone()
                    operation.state_forwards(migration.app_label, state)
                    connection.introspection.state = before
                    connection.introspection.dropped.clear()
                    start = len(editor.collected_sql)
                    try:
                        operation.database_forwards(migration.app_label, editor, before, state)
                    except Exception as error:  # mssql-django refusing is itself a finding
                        problems.append(
                            Problem(label, path, described, f"mssql-django refused: {error!r}")
                        )
                    for message in operation_problems(
                        connection, migration.app_label, operation, state
                    ):
                        problems.append(Problem(label, path, described, message))
                    statements += [
                        Statement(label, path, described, sql)
                        for sql in editor.collected_sql[start:]
                    ]
                start = len(editor.collected_sql)
            statements += [
                Statement(label, path, DEFERRED, sql) for sql in editor.collected_sql[start:]
            ]
    return statements, _first_occurrences(problems), state


def _first_occurrences(problems: list[Problem]) -> list[Problem]:
    """A model's problem is found again by each later operation on it; keep the first."""
    seen: set[str] = set()
    kept = []
    for problem in problems:
        if problem.message not in seen:
            seen.add(problem.message)
            kept.append(problem)
    return kept


# --- The T-SQL layer ----------------------------------------------------------------

_P0 = r"[^()]*"
_P1 = rf"(?:[^()]|\({_P0}\))*"
_P2 = rf"(?:[^()]|\({_P1}\))*"

# Valid T-SQL that sqlglot's tsql dialect cannot parse yet; each rewrite keeps the
# statement's meaning and is applied only when the statement fails to parse as is.
SQLGLOT_GAPS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        "ADD column ... DEFAULT ... WITH VALUES",
        re.compile(r"\s+WITH VALUES(?=\s*;?\s*$)"),
        "",
    ),
    (
        "a column's UNIQUE followed by a CHECK constraint",
        re.compile(rf"\bUNIQUE ((?:CONSTRAINT \S+ )?CHECK \({_P2}\))"),
        r"\1 UNIQUE",
    ),
)


def _template_pattern(template: str) -> re.Pattern[str]:
    identifier = r"(?:\[[^\]]+\]|[\w.]+)"
    holes = {
        "table": identifier,
        "column": identifier,
        "comment": r"N?'(?:[^']|'')*'",
    }
    text = re.escape(" ".join(template.split()))
    for hole, pattern in holes.items():
        text = text.replace(re.escape(f"%({hole})s"), pattern)
    return re.compile(text + r"\s*;?")


# mssql-django's own multi-statement T-SQL batches (DECLARE/WHILE/IF ... ELSE) that
# sqlglot models only as opaque commands. They are fixed strings in mssql-django,
# so a statement matching one exactly is that batch with identifiers filled in.
MSSQL_TEMPLATES: dict[str, re.Pattern[str]] = {
    name: _template_pattern(getattr(MssqlSchemaEditor, name))
    for name in ("sql_delete_table", "sql_alter_table_comment", "sql_alter_column_comment")
}


def mssql_template(sql: str) -> str | None:
    flat = " ".join(sql.split())
    for name, pattern in MSSQL_TEMPLATES.items():
        if pattern.fullmatch(flat):
            return name
    return None


def parse_tsql(sql: str) -> tuple[list[exp.Expr], list[str]]:
    """Parse with sqlglot's tsql dialect; returns the trees and the gap rewrites used."""
    try:
        return [t for t in sqlglot.parse(sql, read="tsql") if t is not None], []
    except sqlglot.errors.ParseError as first_error:
        rewritten, used = sql, []
        for name, pattern, replacement in SQLGLOT_GAPS:
            rewritten, count = pattern.subn(replacement, rewritten)
            if count:
                used.append(name)
        if not used:
            raise
        try:
            return [t for t in sqlglot.parse(rewritten, read="tsql") if t is not None], used
        except sqlglot.errors.ParseError:
            raise first_error from None


_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is)
_CONSTANTS = (exp.Literal, exp.Null, exp.Boolean)


def _constant(node: exp.Expr) -> bool:
    while isinstance(node, exp.Paren | exp.Neg):
        node = node.this
    return isinstance(node, _CONSTANTS)


def filter_predicate_problems(where: exp.Expr) -> list[str]:
    """The WHERE of a CREATE INDEX against SQL Server's filtered-index grammar."""
    problems: list[str] = []

    def conjunct(node: exp.Expr) -> None:
        while isinstance(node, exp.Paren):
            node = node.this
        if isinstance(node, exp.And):
            conjunct(node.this)
            conjunct(node.expression)
        elif isinstance(node, exp.Not) and isinstance(node.this, exp.Is):
            conjunct(node.this)  # IS NOT NULL
        elif isinstance(node, _COMPARISONS):
            if not (isinstance(node.this, exp.Column) and _constant(node.expression)):
                problems.append(f"{node.sql('tsql')!r} is not <column> <op> <constant>")
        elif isinstance(node, exp.In):
            if not (
                isinstance(node.this, exp.Column)
                and node.expressions
                and all(_constant(e) for e in node.expressions)
            ):
                problems.append(f"{node.sql('tsql')!r} is not <column> IN (<constants>)")
        else:
            kind = type(node).__name__.upper()
            problems.append(
                f"{kind} in the filter {node.sql('tsql')!r}: SQL Server filtered indexes "
                "take only AND of <column> <op> <constant>, IN lists and IS [NOT] NULL"
            )

    conjunct(where)
    return problems


_LENGTH_LIMITS = {
    exp.DataType.Type.NVARCHAR: 4000,
    exp.DataType.Type.NCHAR: 4000,
    exp.DataType.Type.VARCHAR: 8000,
    exp.DataType.Type.CHAR: 8000,
    exp.DataType.Type.VARBINARY: 8000,
    exp.DataType.Type.BINARY: 8000,
}


def construct_problems(tree: exp.Expr) -> list[str]:
    """SQL Server restrictions a parser does not enforce, read from the parsed statement."""
    problems = []
    for index in tree.find_all(exp.Index):
        params = index.args.get("params")
        if params is None:
            continue
        for column in params.args.get("columns") or ():
            key = column.this if isinstance(column, exp.Ordered) else column
            if not isinstance(key, exp.Column):
                problems.append(
                    f"index key {key.sql('tsql')!r} is an expression; SQL Server indexes columns"
                )
        where = params.args.get("where")
        if where is not None:
            problems += filter_predicate_problems(where.this)
    for data_type in tree.find_all(exp.DataType):
        limit = _LENGTH_LIMITS.get(data_type.this)
        for param in data_type.expressions:
            value = param.this if isinstance(param, exp.DataTypeParam) else param
            text = value.sql("tsql")
            if text.upper() == "MAX":
                continue
            if not (isinstance(value, exp.Literal) and text.isdigit()):
                problems.append(f"type {data_type.sql('tsql')!r} has no valid length")
            elif limit is not None and not 1 <= int(text) <= limit:
                problems.append(f"type {data_type.sql('tsql')!r}: length must be 1..{limit}")
    for identifier in tree.find_all(exp.Identifier):
        if len(identifier.name) > MAX_IDENTIFIER:
            problems.append(f"identifier {identifier.name!r} is over {MAX_IDENTIFIER} characters")
    return problems


def statement_problems(statement: Statement) -> list[Problem]:
    def problem(message: str) -> Problem:
        return Problem(
            statement.migration, statement.path, statement.operation, message, statement.sql
        )

    if mssql_template(statement.sql):
        return []
    try:
        trees, _ = parse_tsql(statement.sql)
    except sqlglot.errors.ParseError as error:
        first_line = str(error).splitlines()[0]
        return [problem(f"does not parse as T-SQL: {first_line}")]
    found = []
    for tree in trees:
        if isinstance(tree, exp.Command):
            found.append(problem("sqlglot's tsql dialect cannot parse it (opaque command)"))
        found += [problem(message) for message in construct_problems(tree)]
    return found


def check_migrations(
    connection: OfflineSqlServer, migrations: Sequence[Migration], state: ProjectState
) -> tuple[list[Statement], list[Problem]]:
    """Render ``migrations`` from ``state``; every problem of both layers, in order."""
    statements, problems, _ = render_migrations(connection, migrations, state)
    for statement in statements:
        problems += statement_problems(statement)
    return statements, problems


def report(problems: list[Problem]) -> str:
    return f"{len(problems)} SQL Server problem(s):\n" + "\n".join(f"  - {p}" for p in problems)
