"""django-q2 entry points: they take ids and call one service."""

from __future__ import annotations

from . import services


def replay_execute(request_id: int) -> str:
    request = services.replay_execute(request_id=request_id)
    return request.status


def replay_requests_expire() -> int:
    return services.replay_requests_expire()
