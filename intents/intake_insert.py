"""The intake's INSERT of one intent: compiled once, then only its values prepared.

``Model.save()`` compiles its INSERT on every call: the compiler walks the 33 columns,
quotes each one, asks each field for its placeholder and wraps the statement, which
cost the intake more CPU than PostgreSQL spends storing the row. The text does not
depend on the values, so it is compiled once per database vendor, by the ORM's own
compiler (SQL Server gets mssql-django's ``SET NOCOUNT ON INSERT … ; SELECT
CAST(SCOPE_IDENTITY() AS bigint)``, the others ``RETURNING``). Each insert then does
what the compiler does with the values: every field prepares its own
(``get_db_prep_save``), and the new id is read back through the connection's
operations and converters. ``tests/engine/test_intake_insert.py`` checks that the
statement and parameters are exactly those ``save(force_insert=True)`` sends.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import connection
from django.db.models import Field
from django.db.models.sql import InsertQuery

from .models import Intent


@dataclass(frozen=True, slots=True)
class _CompiledInsert:
    sql: str
    fields: tuple[Field[Any, Any], ...]  # one bound parameter each, in order
    returning_fields: tuple[Field[Any, Any], ...]
    returning_params: Any
    returning_columns: tuple[Any, ...]  # the expressions whose converters apply


def insert_intent(intent: Intent) -> None:
    """INSERT ``intent`` (a new, unsaved instance) and set its primary key.

    What ``intent.save(force_insert=True)`` does for this model, which has no
    ``auto_now`` field, no parent model and no save signal of ours: an IntegrityError
    (the unique idempotency key) leaves the instance unsaved, as ``save()`` would.
    """
    compiled = _compiled(connection.vendor)
    params = [
        field.get_db_prep_save(field.pre_save(intent, True), connection)
        for field in compiled.fields
    ]
    ops: Any = connection.ops  # django-stubs lacks fetch_returned_insert_columns
    with connection.cursor() as cursor:
        cursor.execute(compiled.sql, params)
        if connection.features.can_return_columns_from_insert:
            row = ops.fetch_returned_insert_columns(cursor, compiled.returning_params)
        else:
            meta = Intent._meta
            row = (ops.last_insert_id(cursor, meta.db_table, meta.pk.column),)
    values = list(row)
    for index, column in enumerate(compiled.returning_columns):
        # As the compiler's apply_converters (none for an integer id on our backends).
        for converter in connection.ops.get_db_converters(column) + column.get_db_converters(
            connection
        ):
            values[index] = converter(values[index], column, connection)
    for field, value in zip(compiled.returning_fields, values, strict=True):
        setattr(intent, field.attname, value)
    intent._state.adding = False
    intent._state.db = connection.alias


@cache
def _compiled(vendor: str) -> _CompiledInsert:
    """The statement ``Model._save_table`` would build for a new intent on ``vendor``."""
    meta = Intent._meta
    fields = tuple(
        field
        for field in meta.local_concrete_fields
        if not field.generated and field is not meta.auto_field
    )
    returning_fields = tuple(meta.db_returning_fields)
    query = InsertQuery(Intent)
    query.insert_values(list(fields), [Intent()])
    compiler = query.get_compiler(connection=connection)
    compiler.returning_fields = list(returning_fields)
    [(sql, params)] = compiler.as_sql()
    # One placeholder per field, none inlined: then the text holds for any values.
    if len(params) != len(fields):
        raise RuntimeError(
            f"The intent INSERT binds {len(params)} parameters for {len(fields)} fields."
        )
    return _CompiledInsert(
        sql=sql,
        fields=fields,
        returning_fields=returning_fields,
        returning_params=getattr(compiler, "returning_params", ()),
        returning_columns=tuple(field.get_col(meta.db_table) for field in returning_fields),
    )
