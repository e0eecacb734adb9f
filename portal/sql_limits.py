"""Statement-size limits for queries that list ids (SQL Server's are the lowest we meet),
and the width of a text column, to clip a value to it."""

from __future__ import annotations

from django.db import models

# SQL Server accepts at most 2,100 parameters per statement; 500 ids per ``IN (...)``
# list (or per bulk DELETE) leaves room for the statement's other parameters.
IN_LIST_CHUNK = 500


def column_width(model: type[models.Model], name: str) -> int:
    """The ``max_length`` of ``model``'s text field ``name``: one number, declared once."""
    field = model._meta.get_field(name)
    width = getattr(field, "max_length", None)
    if not isinstance(width, int):
        raise TypeError(f"{model.__name__}.{name} has no max_length")
    return width
