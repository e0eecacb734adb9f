"""The ``ops`` channel's canonical payload, shared by ``pagerduty`` and ``slack``.

``summary`` (required), ``severity`` (``critical`` / ``error`` / ``warning`` /
``info``, default ``error``), ``source`` (default ``submission-portal``),
``event_action`` (``trigger`` / ``acknowledge`` / ``resolve``, default ``trigger``),
``dedup_key`` (default: the idempotency key), opt. ``component``, ``group``,
``class``, ``details`` (an object), ``links`` (``[{"href", "text"}]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SEVERITIES = ("critical", "error", "warning", "info")
EVENT_ACTIONS = ("trigger", "acknowledge", "resolve")
DEFAULT_SOURCE = "submission-portal"


def ops_text(payload: Mapping[str, Any]) -> str:
    """One line for a chat message: ``[ERROR] summary (source)``, resolutions marked."""
    severity = str(payload.get("severity") or "error").upper()
    action = str(payload.get("event_action") or "trigger")
    summary = str(payload.get("summary") or "")
    prefix = "RESOLVED" if action == "resolve" else severity
    source = payload.get("source")
    return f"[{prefix}] {summary}" + (f" ({source})" if source else "")
