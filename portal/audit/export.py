"""Serialising audit events as CSV or JSON Lines, one line at a time (for streaming)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from .models import AuditEvent
from .services import HASHED_FIELDS, hashed_body

FORMATS = ("csv", "jsonl")
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
FIELDS = (*HASHED_FIELDS, "hash")
# Cells a spreadsheet would run as a formula. Failed-login usernames are attacker-chosen,
# so CSV cells starting with these get a leading apostrophe; JSON Lines stays exact.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def event_as_dict(event: AuditEvent) -> dict[str, Any]:
    return {**hashed_body(event), "hash": event.hash}


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True, ensure_ascii=False)
    text = str(value)
    if text.startswith(_FORMULA_PREFIXES):
        return "'" + text
    return text


def iter_csv(events: Iterable[AuditEvent]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(row: Iterable[str]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(row)
        return buffer.getvalue()

    yield line(FIELDS)
    for event in events:
        row = event_as_dict(event)
        yield line(_csv_cell(row[name]) for name in FIELDS)


def iter_jsonl(events: Iterable[AuditEvent]) -> Iterator[str]:
    for event in events:
        yield json.dumps(event_as_dict(event), sort_keys=True, ensure_ascii=False) + "\n"


def iter_export(events: Iterable[AuditEvent], fmt: str) -> Iterator[str]:
    if fmt == "csv":
        return iter_csv(events)
    if fmt == "jsonl":
        return iter_jsonl(events)
    raise ValueError(f"unknown export format {fmt!r}; use one of: {', '.join(FORMATS)}")
