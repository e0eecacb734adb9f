"""The field changes every path that finishes an intent shares: the engine recording an
attempt, a client's cancel, and reconciliation. One list, so a new column that finishing
must reset is added once.
"""

from __future__ import annotations

import datetime as dt

from .models import Intent

# What releasing an in-flight intent's lease writes.
LEASE_FIELDS = ("lease_owner", "lease_expires_at", "updated_at")
# What finishing an intent writes: the terminal state, the retry clock stopped, the lease
# released.
FINISHED_FIELDS = ("status", "reason_code", "finished_at", "next_attempt_at", *LEASE_FIELDS)


def release_lease(intent: Intent, *, now: dt.datetime) -> None:
    intent.lease_owner = ""
    intent.lease_expires_at = None
    intent.updated_at = now


def finish(intent: Intent, *, status: str, reason_code: str, now: dt.datetime) -> None:
    """Set ``FINISHED_FIELDS`` (the caller saves them, with whatever else it changed)."""
    intent.status = status
    intent.reason_code = reason_code
    intent.finished_at = now
    intent.next_attempt_at = None
    release_lease(intent, now=now)
