"""Keyset (cursor) pagination, newest first: ``{"results": [...], "next": url | null}``.

The cursor names the last row of the page by ``(created_at, public_id)``; the next page
is every row strictly after it in ``(-created_at, -public_id)`` order (the public id only
breaks ties between rows created in the same microsecond). Unlike offsets, pages stay
correct while new intents arrive, and each page is one indexed range query. The cursor
is opaque to clients (base64url JSON), carries no internal id and stays valid when the
filters change or its row is deleted.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime
from rest_framework.request import Request
from rest_framework.utils.urls import replace_query_param

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
# What ``encode`` makes is about 110 characters; the rest is not worth parsing.
MAX_CURSOR_LENGTH = 256
# Every backend stores these years in UTC (SQL Server's datetime2 and PostgreSQL more).
MIN_CURSOR_YEAR, MAX_CURSOR_YEAR = 1900, 9998


@dataclass(frozen=True, slots=True)
class Cursor:
    created_at: dt.datetime
    public_id: uuid.UUID

    def encode(self) -> str:
        raw = json.dumps({"c": self.created_at.isoformat(), "p": str(self.public_id)})
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        """The cursor ``encode`` made, or ``ValueError`` for anything else a client sends.

        Never more: a cursor is short (``MAX_CURSOR_LENGTH``), so a deeply nested JSON
        document is refused before it is parsed, and its time is read back in UTC, so an
        offset or a year the database cannot store never reaches a query.
        """
        if not isinstance(value, str) or len(value) > MAX_CURSOR_LENGTH:
            raise ValueError("not a cursor returned by this API")
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            data = json.loads(raw)
            if not str(data["c"]).isprintable():
                raise ValueError("control characters in the time")
            created_at = parse_datetime(data["c"])
            public_id = uuid.UUID(data["p"])
            if created_at is None or created_at.tzinfo is None:
                raise ValueError("naive or missing time")
            created_at = created_at.astimezone(dt.UTC)
        except (
            ValueError,
            TypeError,
            KeyError,
            AttributeError,
            OverflowError,
            RecursionError,
            binascii.Error,
            UnicodeDecodeError,
        ):
            raise ValueError("not a cursor returned by this API") from None
        if not MIN_CURSOR_YEAR <= created_at.year <= MAX_CURSOR_YEAR:
            raise ValueError("not a cursor returned by this API")
        return cls(created_at=created_at, public_id=public_id)


@dataclass(frozen=True, slots=True)
class Page:
    results: list[Any]
    next_url: str | None


def paginate_newest_first(
    queryset: QuerySet[Any], *, request: Request, limit: int, cursor: Cursor | None
) -> Page:
    """The page after ``cursor`` of ``queryset`` (rows with created_at, id, public_id)."""
    if cursor is not None:
        queryset = queryset.filter(
            Q(created_at__lt=cursor.created_at)
            | Q(created_at=cursor.created_at, public_id__lt=cursor.public_id)
        )
    rows = list(queryset.order_by("-created_at", "-public_id")[: limit + 1])
    next_url = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        token = Cursor(created_at=last.created_at, public_id=last.public_id).encode()
        next_url = replace_query_param(request.build_absolute_uri(), "cursor", token)
    return Page(results=rows, next_url=next_url)
