"""Statement-size limits for queries that list ids (SQL Server's are the lowest we meet)."""

from __future__ import annotations

# SQL Server accepts at most 2,100 parameters per statement; 500 ids per ``IN (...)``
# list (or per bulk DELETE) leaves room for the statement's other parameters.
IN_LIST_CHUNK = 500
