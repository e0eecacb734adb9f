"""The portal's human-readable time, for Python code (commands, messages, log text).

Templates get the same through ``FORMAT_MODULE_PATH`` (``portal/formats``): one format,
``2026-12-03 10:27:49 UTC``, wherever a person reads a time.
"""

from __future__ import annotations

import datetime as dt

HUMAN_FORMAT = "%Y-%m-%d %H:%M:%S UTC"


def format_instant(value: dt.datetime | None, *, missing: str = "-") -> str:
    """``value`` in UTC with seconds and the zone; ``missing`` for ``None``."""
    if value is None:
        return missing
    if value.tzinfo is None:
        raise ValueError("naive datetime: the portal only handles aware times")
    return value.astimezone(dt.UTC).strftime(HUMAN_FORMAT)
