"""django-q2 entry points: they take ids and call one service."""

from __future__ import annotations

from . import execution, inflight


def execute_batch(lease_token: str, intent_ids: list[int]) -> int | None:
    # Returns before the batch is done when several run per worker (intents/inflight.py).
    return inflight.submit_batch(lease_token=lease_token, intent_ids=intent_ids)


def sweep_expired_leases() -> int:
    return execution.sweep_expired_leases()
