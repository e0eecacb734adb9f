"""django-q2 schedules of the operations app, found by ``manage.py ensure_schedules``
(which imports each app's ``schedules.py``): retention purge (hourly), timeout
reconciliation (every 5 minutes) and the worker heartbeat ping (every minute)."""

from __future__ import annotations

from .services import ensure_schedules

__all__ = ["ensure_schedules"]
