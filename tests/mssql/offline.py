"""An mssql-django connection that compiles T-SQL and never reaches a server.

mssql-django asks the server two things before it will compile: its version
(``sql_server_version`` / ``to_azure_sql_db``, cached per alias in class-level
dicts) and, for ``select_for_update``, whether autocommit is off. The offline
wrapper answers both from memory and refuses to open a connection. Schema
alterations also read the catalog (``get_constraints``) to find the names of the
constraints they must drop; offline, the catalog is derived from the migration
state that precedes the operation, named the way mssql-django names what it
creates. Anything else the schema editor asks the catalog gets an empty answer
and is recorded in ``catalog_queries``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.migrations.state import ProjectState
from django.db.utils import ConnectionHandler
from mssql.base import DatabaseWrapper
from mssql.introspection import DatabaseIntrospection
from mssql.schema import DatabaseSchemaEditor

from portal.settings.base import database_from_env

# The form docs/sqlserver.md tells deployments to use; parsed by the project's own
# settings code so the offline connection is configured exactly like production.
OFFLINE_DATABASE_URL = (
    "mssql://portal:offline@sqlserver.invalid:1433/portal?python_driver=mssql_python"
)
SQL_SERVER_VERSIONS = (2019, 2022)


class OfflineCursor:
    """A driver cursor that records every statement and returns no rows.

    Two exceptions: ``SELECT @@TRANCOUNT``, which mssql-django asks before a savepoint,
    answers 1, consistent with ``get_autocommit()`` being False; and an INSERT that
    asks for its new id (``SELECT CAST(SCOPE_IDENTITY() AS bigint)``) gets
    ``NEW_ID``, as a server would answer, so ``Model.save()`` completes.
    """

    TRANCOUNT = "SELECT @@TRANCOUNT"
    SCOPE_IDENTITY = "SELECT CAST(SCOPE_IDENTITY() AS bigint)"
    NEW_ID = 1

    def __init__(self, log: list[tuple[str, Any]]) -> None:
        self.log = log
        self.description = None
        self.rowcount = -1
        self.last_sql = ""

    def execute(self, sql: str, params: Any = None) -> OfflineCursor:
        self.log.append((sql, params))
        self.last_sql = sql
        return self

    def executemany(self, sql: str, params_list: Any) -> OfflineCursor:
        self.log.append((sql, list(params_list)))
        return self

    def fetchone(self) -> tuple[int] | None:
        if self.last_sql.strip() == self.TRANCOUNT:
            return (1,)
        if self.last_sql.rstrip().endswith(self.SCOPE_IDENTITY):
            return (self.NEW_ID,)
        return None

    def fetchall(self) -> list:
        return []

    def fetchmany(self, size: int = 1) -> list:
        return []

    def nextset(self) -> bool:
        return False

    def close(self) -> None:
        pass


def _constraint(columns: list[str], **flags: Any) -> dict[str, Any]:
    info = {
        "columns": columns,
        "primary_key": False,
        "unique": False,
        "unique_constraint": False,
        "foreign_key": None,
        "check": False,
        "index": False,
        "default": False,
        "orders": [],
        "type": None,
    }
    info.update(flags)
    return info


def _column(model: type[models.Model], name: str) -> str:
    """The column of ``model``'s concrete field ``name`` (a key or constraint field)."""
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field) and field.column is not None
    return field.column


class OfflineIntrospection(DatabaseIntrospection):
    """``get_constraints`` answered from ``self.state``, the state before the operation.

    Like a live catalog, it leaves out what the operation has dropped so far and what
    the open schema editor has only deferred (indexes and foreign keys of a table
    created earlier in the same migration do not exist until the migration ends).
    """

    state: ProjectState | None = None

    def __init__(self, connection: Any) -> None:
        super().__init__(connection)
        self.dropped: set[str] = set()
        self.editor: DatabaseSchemaEditor | None = None

    def _model_for_table(self, table_name: str) -> type[models.Model] | None:
        if self.state is None:
            return None
        for model in self.state.apps.get_models(include_auto_created=True):
            if model._meta.db_table == table_name:
                return model
        return None

    def get_constraints(self, cursor: Any, table_name: str) -> dict[str, dict[str, Any]]:
        model = self._model_for_table(table_name)
        if model is None:
            return {}
        name = DatabaseSchemaEditor(self.connection, collect_sql=True)._create_index_name
        table = model._meta.db_table
        found: dict[str, dict[str, Any]] = {}
        for field in model._meta.local_concrete_fields:
            column = field.column
            assert column is not None  # a concrete field has a column
            # db_index / db_constraint are set in Field/ForeignKey.__init__ but django-stubs
            # declares neither attribute.
            flags = cast(Any, field)
            if field.primary_key:
                # SQL Server names it PK__...; get_constraints reports it from the
                # key-usage view, so as a unique constraint, not as an index.
                found[f"PK__{table}"] = _constraint([column], primary_key=True, unique=True)
                continue
            if field.remote_field and flags.db_constraint:
                to = cast("models.ForeignKey[Any, Any]", field).target_field
                suffix = f"_fk_{to.model._meta.db_table}_{to.column}"
                found[name(table, [column], suffix=suffix)] = _constraint(
                    [column], foreign_key=(to.model._meta.db_table, to.column)
                )
            if field.unique:
                if field.null:  # mssql-django: a filtered unique index, "_uniq"
                    found[name(table, [column], suffix="_uniq")] = _constraint(
                        [column], unique=True, index=True, type="idx"
                    )
                else:  # an inline UNIQUE: SQL Server names it UQ__...
                    found[f"UQ__{table}__{column}"] = _constraint(
                        [column], unique=True, unique_constraint=True
                    )
            elif flags.db_index:
                found[name(table, [column], suffix="")] = _constraint(
                    [column], index=True, type="idx"
                )
            if field.db_parameters(connection=self.connection)["check"]:
                found[name(table, [column], suffix="_check")] = _constraint([column], check=True)
        for fields in model._meta.unique_together:
            columns = [_column(model, f) for f in fields]
            found[name(table, columns, suffix="_uniq")] = _constraint(
                columns, unique=True, index=True, type="idx"
            )
        for index in model._meta.indexes:
            columns = [_column(model, f.lstrip("-")) for f in index.fields]
            found[index.name] = _constraint(columns, index=True, type="idx")
        for constraint in model._meta.constraints:
            columns = [_column(model, f) for f in getattr(constraint, "fields", ())]
            if isinstance(constraint, models.UniqueConstraint):
                filtered = constraint.condition is not None
                found[constraint.name] = _constraint(
                    columns, unique=True, unique_constraint=not filtered, index=filtered
                )
            elif isinstance(constraint, models.CheckConstraint):
                found[constraint.name] = _constraint(columns, check=True)
        pending = " ".join(str(sql) for sql in self.editor.deferred_sql) if self.editor else ""
        return {
            name: info
            for name, info in found.items()
            if name not in self.dropped and f"[{name}]" not in pending
        }


_DROPPED = re.compile(r"DROP (?:INDEX|CONSTRAINT) \[?([^\]\s;]+)\]?")


class OfflineSchemaEditor(DatabaseSchemaEditor):
    """Records what each statement drops, so the offline catalog stops reporting it."""

    def __enter__(self) -> OfflineSchemaEditor:
        self.connection.introspection.editor = self
        return super().__enter__()

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        try:
            super().__exit__(exc_type, exc_value, traceback)
        finally:
            self.connection.introspection.editor = None

    def execute(self, sql: Any, params: Any = (), has_result: bool = False) -> Any:
        result = super().execute(sql, params, has_result)
        self.connection.introspection.dropped.update(_DROPPED.findall(str(sql)))
        return result


class OfflineSqlServer(DatabaseWrapper):
    """mssql-django's DatabaseWrapper with its server facts supplied instead of queried."""

    introspection_class = OfflineIntrospection
    SchemaEditorClass = OfflineSchemaEditor
    # Own caches: mssql-django keeps these per alias on the class, shared by every
    # wrapper; the offline ones must never leak into a real connection's.
    _known_versions: dict[str, int] = {}
    _known_azures: dict[str, bool] = {}

    def __init__(self, settings_dict: dict[str, Any], alias: str, *, version: int) -> None:
        super().__init__(settings_dict, alias)
        self._known_versions[alias] = version
        self._known_azures[alias] = False
        self.catalog_queries: list[tuple[str, Any]] = []

    def ensure_connection(self) -> None:
        """Never connect; every compile path that needs a server must fail elsewhere."""

    def get_autocommit(self) -> bool:
        # Compiled as if inside transaction.atomic(), which is where the code runs them.
        return False

    def create_cursor(self, name: str | None = None) -> Any:
        from mssql.base import CursorWrapper

        return CursorWrapper(OfflineCursor(self.catalog_queries), self)

    def _set_autocommit(self, autocommit: bool) -> None:
        raise AssertionError("the offline SQL Server connection has no transactions")


def offline_settings() -> dict[str, Any]:
    """The deployment URL parsed by the project's settings code, plus Django's defaults."""
    handler = ConnectionHandler({DEFAULT_DB_ALIAS: database_from_env(OFFLINE_DATABASE_URL)})
    return handler.settings[DEFAULT_DB_ALIAS]


def offline_connection(version: int = 2022) -> OfflineSqlServer:
    alias = f"mssql_offline_{version}"
    return OfflineSqlServer(offline_settings(), alias, version=version)


@contextmanager
def registered(connection: OfflineSqlServer) -> Iterator[OfflineSqlServer]:
    """Make ``connections[alias]`` resolve to ``connection`` (routers and
    ``Options.can_migrate`` look the alias up), for this thread only."""
    connections[connection.alias] = connection
    try:
        yield connection
    finally:
        del connections[connection.alias]


@contextmanager
def as_default(version: int = 2022) -> Iterator[OfflineSqlServer]:
    """Make the offline connection the ``default`` alias for this thread, so code that
    uses ``Model.objects`` and ``django.db.connection`` runs against it unchanged.

    Every statement the code executes is recorded, in the form the driver receives
    (``?`` placeholders), in ``connection.catalog_queries``; every read returns no rows.
    """
    previous = connections[DEFAULT_DB_ALIAS]
    connection = OfflineSqlServer(offline_settings(), DEFAULT_DB_ALIAS, version=version)
    connections[DEFAULT_DB_ALIAS] = connection
    try:
        yield connection
    finally:
        connections[DEFAULT_DB_ALIAS] = previous
