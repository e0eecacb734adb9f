"""SQL Server parity mode: run on PostgreSQL or SQLite as if mssql-django were the backend.

Production runs on SQL Server through mssql-django, which lacks ORM features the
test databases have. ``install_parity_flags()`` copies mssql-django's values for the
behaviour-changing feature flags onto every configured connection, so a use of a
missing feature fails in the test suite instead of in production:

* where Django itself consults the flag (``bulk_create(ignore_conflicts=…)``,
  ``update_conflicts``, ``select_for_update(of=…/no_key=…)``, window frame
  exclusion, compound slicing), it raises ``NotSupportedError``;
* where PostgreSQL's own compilation skips the flag (JSON ``__contains`` /
  ``__contained_by`` compile to ``@>`` / ``<@`` in ``as_postgresql``; ``JSONObject``),
  a guard on that method raises;
* where Django silently degrades instead (expression indexes, deferrable and
  ``nulls_distinct`` unique constraints are skipped by the schema editor;
  ``bulk_create`` leaves primary keys unset), the schema-editor, operations and
  cursor guards below raise, or the missing value makes the caller fail;
* DDL SQL Server cannot build at all (filtered indexes whose condition has OR or
  NOT, index keys on ``nvarchar(max)`` columns, ``nvarchar`` above 4000) raises
  from the schema editor, so a migration that SQL Server would reject breaks the
  test database's creation.

``tests/conftest.py`` calls ``install_parity_flags()`` when ``MSSQL_PARITY=1``;
tests can use ``parity_flags()`` for a scoped install. Installs nest: each one
restores exactly what it replaced.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.db import NotSupportedError, connections
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.backends.signals import connection_created
from django.db.models import Field, Index, JSONField, Model, Q, UniqueConstraint
from django.db.models.fields.json import ContainedBy, DataContains
from django.db.models.functions import JSONObject

# Flags imposed from mssql-django's DatabaseFeatures (their values are read from it,
# never written here). Each one changes what the ORM does, not only its SQL text.
IMPOSED_FLAGS: tuple[str, ...] = (
    "supports_ignore_conflicts",  # bulk_create(ignore_conflicts=True) raises
    "supports_update_conflicts",  # bulk_create(update_conflicts=True) raises
    "supports_update_conflicts_with_target",  # ... with unique_fields raises
    "can_return_rows_from_bulk_insert",  # bulk_create leaves pk None on the objects
    "supports_json_field_contains",  # JSONField __contains / __contained_by: guarded
    "has_select_for_update_of",  # select_for_update(of=...) raises
    "has_select_for_no_key_update",  # select_for_update(no_key=True) raises
    "can_distinct_on_fields",  # distinct("field"): guarded in the operations class
    "has_json_object_function",  # JSONObject(): guarded on PostgreSQL < 16 too
    "supports_expression_indexes",  # Index(Lower(...)): guarded in the schema editor
    "supports_deferrable_unique_constraints",  # silently skipped: guarded
    "supports_nulls_distinct_unique_constraints",  # silently skipped: guarded
    "supports_index_on_text_field",  # nvarchar(max) key columns: guarded
    "supports_unlimited_charfield",  # CharField() without max_length: system check
    "supports_slicing_ordering_in_compound",  # union of sliced querysets raises
    "supports_frame_exclusion",  # Window(exclusion=...) raises
    "supports_paramstyle_pyformat",  # cursor.execute(sql, {dict}): guarded per cursor
)

# Flags where mssql-django differs but imposing them would only change SQL text
# (Django emulates the feature) or would break the host backend's own machinery.
NOT_IMPOSED: dict[str, str] = {
    "allow_sliced_subqueries_with_in": "not consulted by Django; SQL Server accepts TOP in IN",
    "allows_group_by_select_index": "SQL text only (GROUP BY expressions instead of ordinals)",
    "allows_group_by_selected_pks": "SQL text only",
    "can_clone_databases": "test-database machinery (pytest-xdist clones)",
    "can_defer_constraint_checks": "test-database machinery (TestCase teardown checks)",
    "can_introspect_json_field": "introspection only",
    "can_introspect_materialized_views": "introspection only",
    "can_release_savepoints": "transaction machinery; no ORM-visible difference",
    "can_rename_index": "migration SQL text only (drop and create instead of rename)",
    "can_use_chunked_reads": "iterator() still works, it just buffers",
    "has_native_duration_field": "storage format; flipping it breaks the host's columns",
    "has_native_json_field": "storage format; flipping it breaks the host's decoding",
    "has_native_uuid_field": "storage format; flipping it breaks the host's columns",
    "has_json_operators": "SQL text only",
    "json_key_contains_list_matching_requires_list": "test-suite flag",
    "nulls_order_largest": "NULL ordering: documented in docs/sqlserver.md, not emulable",
    "only_supports_unbounded_with_preceding_and_following": "host's own window limits",
    "requires_casted_case_in_updates": "the host needs its casts",
    "schema_editor_uses_clientside_param_binding": "host driver detail",
    "supports_aggregate_filter_clause": "Django emulates FILTER with CASE WHEN",
    "supports_boolean_expr_in_select_clause": "Django wraps the expression in CASE WHEN",
    "supports_combined_alters": "migration SQL text only",
    "supports_comparing_boolean_expr": "Django rewrites the comparison",
    "supports_order_by_nulls_modifier": "Django emulates NULLS FIRST/LAST",
    "supports_primitives_in_json_field": "only consulted on Oracle",
    "supports_sequence_reset": "test-database machinery",
    "supports_subqueries_in_group_by": "SQL text only",
    "supports_tuple_lookups": "Django emulates tuple lookups",
    "supports_unspecified_pk": "SQLite-only capability, unused by Django's ORM",
}

# SQL Server's filtered-index grammar: column <op> constant, column IN (constants),
# column IS [NOT] NULL, joined by AND. No OR, NOT, LIKE, BETWEEN, functions or joins.
FILTER_LOOKUPS = frozenset({"exact", "in", "isnull", "gt", "gte", "lt", "lte"})
NVARCHAR_MAX_LENGTH = 4000
MAX_TYPES = ("TextField", "JSONField")


def mssql_feature_flags() -> dict[str, bool]:
    """mssql-django's value for each imposed flag, read from its DatabaseFeatures."""
    from mssql.features import DatabaseFeatures

    values = {name: getattr(DatabaseFeatures, name) for name in IMPOSED_FLAGS}
    not_bool = {name: value for name, value in values.items() if not isinstance(value, bool)}
    if not_bool:
        raise TypeError(f"mssql-django's flags are no longer plain booleans: {not_bool}")
    return values


# --- What SQL Server cannot build ---------------------------------------------------


def filter_condition_problems(model: type[Model], condition: Q) -> list[str]:
    """Why SQL Server cannot use ``condition`` as a filtered index / constraint predicate."""
    problems: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Q):
            if node.negated:
                problems.append(
                    f"NOT in {node!r}: filtered indexes take no NOT; use <>, IS NOT NULL or IN"
                )
            if node.connector != Q.AND and len(node.children) > 1:
                problems.append(
                    f"{node.connector} in {node!r}: filtered indexes take only AND "
                    "(split it into one index per branch, or use IN on one column)"
                )
            for child in node.children:
                walk(child)
        elif isinstance(node, tuple):
            problems.extend(_lookup_problems(model, *node))
        else:
            problems.append(f"expression {node!r}: filtered indexes compare columns to constants")

    walk(condition)
    return problems


def _lookup_problems(model: type[Model], lookup: str, value: Any) -> list[str]:
    field_name, *rest = lookup.split("__")
    try:
        field = model._meta.get_field(field_name)
    except Exception:  # FieldDoesNotExist, or a reverse relation
        return [f"{lookup!r}: {field_name!r} is not a column of {model._meta.label}"]
    if not getattr(field, "concrete", False) or getattr(field, "many_to_many", False):
        return [f"{lookup!r}: {field_name!r} is not a column of {model._meta.label}"]
    if len(rest) > 1 or (rest and rest[0] not in FILTER_LOOKUPS):
        return [
            f"{lookup!r}: filtered indexes allow only =, <>, <, <=, >, >=, IN and "
            "IS [NOT] NULL on a column of the table (no LIKE, BETWEEN, transforms or joins)"
        ]
    values = value if (rest and rest[0] == "in") else [value]
    if any(hasattr(v, "resolve_expression") for v in values):
        return [f"{lookup!r}: filtered indexes compare a column to constants, not expressions"]
    return []


def mssql_column_type_problem(field: Field) -> str | None:
    """A column SQL Server cannot create at all."""
    if field.get_internal_type() in {"CharField", "SlugField"}:
        if field.max_length is None:
            return f"{field.name}: CharField without max_length (SQL Server needs a length)"
        if field.max_length > NVARCHAR_MAX_LENGTH:
            return (
                f"{field.name}: max_length {field.max_length} exceeds nvarchar's "
                f"{NVARCHAR_MAX_LENGTH}; use a TextField"
            )
    return None


def is_max_column(field: Field) -> bool:
    """True when mssql-django stores the field as nvarchar(max) / varbinary(max)."""
    internal = field.get_internal_type()
    if internal in MAX_TYPES or isinstance(field, JSONField):
        return True
    return internal == "BinaryField" and field.max_length in (None, "max")


def index_problems(model: type[Model], index: Index | UniqueConstraint) -> list[str]:
    """Why SQL Server cannot build ``index`` (an Index or a UniqueConstraint) as declared."""
    kind = "unique constraint" if isinstance(index, UniqueConstraint) else "index"
    where = f"{kind} {index.name!r} on {model._meta.label}"
    problems = []
    if index.contains_expressions:
        problems.append(
            f"{where}: indexes an expression; SQL Server indexes columns only "
            "(index a GeneratedField holding the expression instead)"
        )
    if index.condition is not None:
        problems += [f"{where}: {p}" for p in filter_condition_problems(model, index.condition)]
    if isinstance(index, UniqueConstraint):
        if index.deferrable is not None:
            problems.append(f"{where}: deferrable; mssql-django would silently not create it")
        if index.nulls_distinct is not None:
            problems.append(f"{where}: nulls_distinct; mssql-django would silently not create it")
    for name in index.fields:
        field = model._meta.get_field(name.lstrip("-"))
        if isinstance(field, Field) and is_max_column(field):
            problems.append(
                f"{where}: key column {field.name!r} is nvarchar(max)/varbinary(max), "
                "which SQL Server cannot index"
            )
    return problems


def field_problems(model: type[Model], field: Field) -> list[str]:
    """Column-level DDL that SQL Server rejects (type, or an index on a (max) column)."""
    problems = []
    if (problem := mssql_column_type_problem(field)) is not None:
        problems.append(f"{model._meta.label}.{problem}")
    indexed = (
        (field.unique and not field.primary_key)
        # django-stubs declare db_index only as an __init__ argument, not as the attribute.
        or field.db_index  # type: ignore[attr-defined]
        or field.primary_key
    )
    if indexed and is_max_column(field):
        problems.append(
            f"{model._meta.label}.{field.name}: unique/db_index on an nvarchar(max)/"
            "varbinary(max) column, which SQL Server cannot index"
        )
    return problems


def model_problems(model: type[Model]) -> list[str]:
    """Everything about ``model``'s table that SQL Server cannot build."""
    problems: list[str] = []
    for field in model._meta.local_concrete_fields:
        problems += field_problems(model, field)
    for index in model._meta.indexes:
        problems += index_problems(model, index)
    for constraint in model._meta.constraints:
        if isinstance(constraint, UniqueConstraint):
            problems += index_problems(model, constraint)
    for fields in model._meta.unique_together:
        for name in fields:
            column = model._meta.get_field(name)
            if isinstance(column, Field) and is_max_column(column):
                problems.append(f"{model._meta.label}: unique_together on (max) column {name!r}")
    return problems


# --- Installing -----------------------------------------------------------------


def _refuse(problems: list[str]) -> None:
    if problems:
        raise NotSupportedError("SQL Server cannot build this: " + "; ".join(problems))


def _schema_editor_guards(cls: type[BaseDatabaseSchemaEditor]) -> dict[str, Callable[..., Any]]:
    """Guarded versions of the schema editor's DDL entry points, wrapping ``cls``'s current ones."""
    original = {
        name: getattr(cls, name)
        for name in ("create_model", "add_index", "add_constraint", "add_field", "alter_field")
    }

    def create_model(self: Any, model: type[Model]) -> Any:
        _refuse(model_problems(model))
        return original["create_model"](self, model)

    def add_index(self: Any, model: type[Model], index: Index, *args: Any, **kwargs: Any) -> Any:
        _refuse(index_problems(model, index))
        return original["add_index"](self, model, index, *args, **kwargs)

    def add_constraint(self: Any, model: type[Model], constraint: Any) -> Any:
        if isinstance(constraint, UniqueConstraint):
            _refuse(index_problems(model, constraint))
        return original["add_constraint"](self, model, constraint)

    def add_field(self: Any, model: type[Model], field: Field) -> Any:
        _refuse(field_problems(model, field))
        return original["add_field"](self, model, field)

    def alter_field(
        self: Any, model: type[Model], old: Field, new: Field, *a: Any, **k: Any
    ) -> Any:
        _refuse(field_problems(model, new))
        return original["alter_field"](self, model, old, new, *a, **k)

    return {
        "create_model": create_model,
        "add_index": add_index,
        "add_constraint": add_constraint,
        "add_field": add_field,
        "alter_field": alter_field,
    }


def _operations_guards(cls: type[BaseDatabaseOperations]) -> dict[str, Callable[..., Any]]:
    original = cls.distinct_sql

    def distinct_sql(self: Any, fields: Any, params: Any) -> Any:
        if fields and not self.connection.features.can_distinct_on_fields:
            raise NotSupportedError("DISTINCT ON fields is not supported by SQL Server")
        return original(self, fields, params)

    return {"distinct_sql": distinct_sql}


def _refuse_pyformat(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, ctx: Any
) -> Any:
    rows = params if many else [params]
    if any(isinstance(row, Mapping) for row in rows or ()):
        raise NotSupportedError("SQL Server drivers take positional %s parameters, not a dict")
    return execute(sql, params, many, ctx)


def _json_contains_guard(original: Callable[..., Any]) -> Callable[..., Any]:
    """PostgreSQL compiles ``__contains`` / ``__contained_by`` on a JSONField as ``@>`` /
    ``<@`` through ``as_postgresql``, which never consults the feature flag."""

    def as_postgresql(self: Any, compiler: Any, connection: Any) -> Any:
        if not connection.features.supports_json_field_contains:
            raise NotSupportedError(
                f"{self.lookup_name} lookup on a JSONField is not supported by SQL Server's "
                "backend (mssql-django)"
            )
        return original(self, compiler, connection)

    return as_postgresql


def _json_object_guard(original: Callable[..., Any]) -> Callable[..., Any]:
    def as_postgresql(self: Any, compiler: Any, connection: Any, **extra: Any) -> Any:
        if not connection.features.has_json_object_function:
            raise NotSupportedError("JSONObject() is not supported by SQL Server's backend")
        return original(self, compiler, connection, **extra)

    return as_postgresql


class _Install:
    """One install: every attribute it replaced, to put back in reverse order."""

    _missing = object()

    def __init__(self) -> None:
        self.undo: list[Callable[[], object]] = []
        # Each install has its own cursor guard, so nested installs never remove
        # the guard an outer one still relies on.
        self.cursor_guard = functools.partial(_refuse_pyformat)
        self.uid = f"mssql-parity-{id(self)}"

    def swap(self, owner: Any, name: str, value: Any) -> None:
        previous = owner.__dict__.get(name, self._missing)
        setattr(owner, name, value)

        def restore() -> None:
            if previous is self._missing:
                delattr(owner, name)
            else:
                setattr(owner, name, previous)

        self.undo.append(restore)

    def guard_cursors(self, sender: Any = None, connection: Any = None, **kwargs: Any) -> None:
        if self.cursor_guard not in connection.execute_wrappers:
            connection.execute_wrappers.append(self.cursor_guard)

    def unguard_cursors(self, connection: Any) -> None:
        if self.cursor_guard in connection.execute_wrappers:
            connection.execute_wrappers.remove(self.cursor_guard)


def install_parity_flags() -> Callable[[], None]:
    """Impose mssql-django's flags and guards on every configured connection.

    Returns the function that undoes exactly this install.
    """
    flags = mssql_feature_flags()
    install = _Install()
    guarded: set[type] = set()
    for alias in connections:
        wrapper = connections[alias]
        features = wrapper.features
        for name, value in flags.items():
            install.swap(type(features), name, value)
            if name in features.__dict__:  # a cached_property computed before the install
                install.swap(features, name, value)
        # Each factory takes its own class; Any lets the pairs share one loop.
        patched: tuple[tuple[type, Callable[[Any], dict[str, Callable[..., Any]]]], ...] = (
            (wrapper.SchemaEditorClass, _schema_editor_guards),
            (type(wrapper.ops), _operations_guards),
        )
        for cls, guards in patched:
            if cls not in guarded:
                guarded.add(cls)
                for name, guard in guards(cls).items():
                    install.swap(cls, name, guard)
        install.guard_cursors(connection=wrapper)
        install.undo.append(functools.partial(install.unguard_cursors, wrapper))
    for lookup in (DataContains, ContainedBy):
        install.swap(lookup, "as_postgresql", _json_contains_guard(lookup.as_postgresql))
    if "as_postgresql" in JSONObject.__dict__:
        install.swap(JSONObject, "as_postgresql", _json_object_guard(JSONObject.as_postgresql))
    connection_created.connect(install.guard_cursors, weak=False, dispatch_uid=install.uid)
    install.undo.append(functools.partial(connection_created.disconnect, dispatch_uid=install.uid))

    def uninstall() -> None:
        while install.undo:
            install.undo.pop()()

    return uninstall


@contextmanager
def parity_flags() -> Iterator[dict[str, bool]]:
    """Parity for the duration of a ``with`` block; yields the imposed flag values."""
    uninstall = install_parity_flags()
    try:
        yield mssql_feature_flags()
    finally:
        uninstall()
