"""Two approvers deciding one replay request at the same moment (real PostgreSQL).

Each decision re-reads the request under ``SELECT … FOR UPDATE`` before it changes it,
so exactly one decision lands and the other is refused as a transition from a state
the request has already left; never two approvals, never an approval and a rejection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import pytest
from django.db import connections

from deadletters import services
from deadletters.errors import InvalidTransition
from deadletters.models import ReplayRequest, ReplayStatus
from portal.audit.models import AuditEvent
from portal.audit.selectors import audit_chain_verify
from tests.accounts.factories import create_staff_user, totp_code

T = TypeVar("T")

pytestmark = [
    pytest.mark.postgres_only(
        reason="SQLite serialises every writer, so the decisions never race on the row lock"
    ),
    pytest.mark.django_db(transaction=True),
]


def race(*decisions: Callable[[], T]) -> tuple[list[T], list[BaseException]]:
    """Run the decisions in threads released together; what each returned or raised."""
    results: list[T] = []
    refusals: list[BaseException] = []
    start = threading.Barrier(len(decisions))
    lock = threading.Lock()

    def run(decide: Callable[[], T]) -> None:
        try:
            start.wait(timeout=30)
            outcome = decide()
            with lock:
                results.append(outcome)
        except BaseException as exc:  # judged in the main thread
            with lock:
                refusals.append(exc)
        finally:
            connections.close_all()  # each thread used its own connection

    threads = [threading.Thread(target=run, args=(decide,)) for decide in decisions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results, refusals


@pytest.fixture
def approvers(db):
    return [create_staff_user(name, roles=["approvers"]) for name in ("abel", "ada")]


def decisions_recorded(request: ReplayRequest) -> list[str]:
    return list(
        AuditEvent.objects.filter(
            object_id=str(request.public_id), action__in=["replay.approved", "replay.rejected"]
        ).values_list("action", flat=True)
    )


def test_two_approvals_at_once_approve_once(traveller, replay_requested, approvers):
    request = replay_requested()
    results, refusals = race(
        *[
            lambda user=user, device=device: services.replay_request_approve(
                request=request, approver=user, otp_token=totp_code(device)
            )
            for user, device in approvers
        ]
    )
    assert len(results) == 1, refusals
    assert len(refusals) == 1 and isinstance(refusals[0], InvalidTransition), refusals
    request.refresh_from_db()
    assert request.decided_by == results[0].decided_by
    # Sync django-q (tests) ran the approved replay on commit: executed exactly once.
    assert request.status == ReplayStatus.DONE
    assert decisions_recorded(request) == ["replay.approved"]
    assert AuditEvent.objects.filter(action="replay.executed").count() == 1
    assert audit_chain_verify().intact


def test_an_approval_and_a_rejection_at_once_decide_once(traveller, replay_requested, approvers):
    request = replay_requested()
    (abel, abel_device), (ada, ada_device) = approvers
    results, refusals = race(
        lambda: services.replay_request_approve(
            request=request, approver=abel, otp_token=totp_code(abel_device)
        ),
        lambda: services.replay_request_reject(
            request=request, approver=ada, otp_token=totp_code(ada_device), reason="not yet"
        ),
    )
    assert len(results) == 1, refusals
    assert len(refusals) == 1 and isinstance(refusals[0], InvalidTransition), refusals
    request.refresh_from_db()
    winner = results[0]
    assert request.decided_by == winner.decided_by
    if winner.decided_by == abel:
        assert request.status == ReplayStatus.DONE
        assert decisions_recorded(request) == ["replay.approved"]
    else:
        assert request.status == ReplayStatus.REJECTED
        assert decisions_recorded(request) == ["replay.rejected"]
    assert audit_chain_verify().intact
