"""Requesting a replay: an operator, a reason, open dead letters that no request holds."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from deadletters import services
from deadletters.errors import AlreadyInReplay, InvalidTransition, NothingToReplay
from deadletters.filters import ReplayFilters
from deadletters.models import (
    DeadLetterStatus,
    ReplayItem,
    ReplayItemOutcome,
    ReplayRequest,
    ReplayStatus,
)
from portal.audit.models import AuditEvent
from portal.errors import InvalidRequest, PermissionDenied
from tests.accounts.factories import create_staff_user

from .conftest import REJECTED, TRANSIENT

pytestmark = pytest.mark.django_db


def status_of(dead_letter):
    dead_letter.refresh_from_db()
    return dead_letter.status


def test_request_by_ids_holds_the_dead_letters(frozen_clock, dead_letter, operator, settings):
    user, _ = operator
    first, second = dead_letter(), dead_letter()
    request = services.replay_request_create(
        requested_by=user,
        reason="  gateway fixed its number range  ",
        dead_letter_ids=[str(first.public_id), second.public_id],
        ip_address="10.1.2.3",
    )
    assert request.status == ReplayStatus.PENDING
    assert request.reason == "gateway fixed its number range"
    assert request.requested_by == user
    assert request.decided_by is None
    assert request.expires_at == frozen_clock.now + dt.timedelta(
        seconds=settings.REPLAY_REQUEST_TTL_S
    )
    assert sorted(request.items.values_list("dead_letter_id", "outcome")) == [
        (first.pk, ReplayItemOutcome.PENDING),
        (second.pk, ReplayItemOutcome.PENDING),
    ]
    assert status_of(first) == status_of(second) == DeadLetterStatus.REPLAY_PENDING
    event = AuditEvent.objects.get(action="replay.requested")
    assert (event.actor_label, event.object_type, event.object_id, event.ip_address) == (
        "olga",
        "replay_request",
        str(request.public_id),
        "10.1.2.3",
    )
    assert event.data["count"] == 2
    assert event.data["reason"] == "gateway fixed its number range"
    assert sorted(event.data["dead_letters"]) == sorted(
        [str(first.public_id), str(second.public_id)]
    )


def test_request_by_filters_takes_every_match(dead_letter, operator):
    rejected = [dead_letter(REJECTED), dead_letter(REJECTED)]
    exhausted = dead_letter(TRANSIENT)
    request = services.replay_request_create(
        requested_by=operator[0],
        reason="retry the rejected ones",
        filters=ReplayFilters.parse(reason_code="gateway_rejected"),
    )
    assert sorted(request.items.values_list("dead_letter_id", flat=True)) == sorted(
        dl.pk for dl in rejected
    )
    assert request.filters == {"reason": "gateway_rejected"}
    assert status_of(exhausted) == DeadLetterStatus.OPEN
    with pytest.raises(NothingToReplay):
        services.replay_request_create(
            requested_by=operator[0],
            reason="again",
            filters=ReplayFilters.parse(reason_code="gateway_rejected"),
        )


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_request_needs_a_reason(dead_letter, operator, reason):
    dl = dead_letter()
    with pytest.raises(InvalidRequest, match="reason is required"):
        services.replay_request_create(
            requested_by=operator[0], reason=reason, dead_letter_ids=[dl.public_id]
        )
    assert not ReplayRequest.objects.exists()
    assert status_of(dl) == DeadLetterStatus.OPEN
    assert not AuditEvent.objects.filter(action="replay.requested").exists()


@pytest.mark.parametrize("roles", [["approvers"], ["auditors"], []])
def test_request_needs_the_operators_role(dead_letter, roles):
    dl = dead_letter()
    user, _ = create_staff_user("nora", roles=roles)
    with pytest.raises(PermissionDenied, match="operators role"):
        services.replay_request_create(
            requested_by=user, reason="please", dead_letter_ids=[dl.public_id]
        )
    assert not ReplayRequest.objects.exists()


def test_ids_or_filters_not_both_nor_neither(dead_letter, operator):
    dl = dead_letter()
    neither_or_both: tuple[dict[str, Any], ...] = (
        {},
        {"dead_letter_ids": [dl.public_id], "filters": ReplayFilters()},
    )
    for kwargs in neither_or_both:
        with pytest.raises(InvalidRequest, match="either"):
            services.replay_request_create(requested_by=operator[0], reason="x", **kwargs)
    with pytest.raises(InvalidRequest, match="at least one"):
        services.replay_request_create(requested_by=operator[0], reason="x", dead_letter_ids=[])
    with pytest.raises(InvalidRequest, match="No dead letter"):
        services.replay_request_create(
            requested_by=operator[0], reason="x", dead_letter_ids=["not-a-uuid"]
        )


def test_a_dead_letter_is_in_one_pending_request_at_most(dead_letter, operator):
    dl, other = dead_letter(), dead_letter()
    first = services.replay_request_create(
        requested_by=operator[0], reason="first", dead_letter_ids=[dl.public_id]
    )
    with pytest.raises(AlreadyInReplay, match=str(first.public_id)):
        services.replay_request_create(
            requested_by=operator[0],
            reason="second",
            dead_letter_ids=[other.public_id, dl.public_id],
        )
    # Nothing of the refused request remains; the other dead letter stayed open.
    assert ReplayRequest.objects.count() == 1
    assert status_of(other) == DeadLetterStatus.OPEN
    assert ReplayItem.objects.filter(dead_letter=other).count() == 0


def test_closed_dead_letters_cannot_be_requested(dead_letter, operator):
    dl = dead_letter()
    services.dead_letter_discard(dead_letter=dl, actor=operator[0], reason="customer gone")
    with pytest.raises(InvalidTransition, match="discarded"):
        services.replay_request_create(
            requested_by=operator[0], reason="x", dead_letter_ids=[dl.public_id]
        )


def test_restricted_operator_cannot_request_another_tenants_dead_letter(
    dead_letter, tenant, other_tenant
):
    foreign = dead_letter(tenant_=other_tenant)
    restricted, _ = create_staff_user("rita", roles=["operators"], tenants=[tenant])
    with pytest.raises(InvalidRequest, match="No dead letter"):
        services.replay_request_create(
            requested_by=restricted, reason="x", dead_letter_ids=[foreign.public_id]
        )
    with pytest.raises(NothingToReplay):
        services.replay_request_create(
            requested_by=restricted, reason="x", filters=ReplayFilters.parse(tenant="globex")
        )
    assert status_of(foreign) == DeadLetterStatus.OPEN


def test_request_size_is_bounded(dead_letter, operator, settings):
    settings.REPLAY_MAX_ITEMS = 2
    for _ in range(3):
        dead_letter()
    with pytest.raises(InvalidRequest, match="at most 2"):
        services.replay_request_create(
            requested_by=operator[0], reason="x", filters=ReplayFilters.parse(target_key="sms.fast")
        )
    assert not ReplayRequest.objects.exists()
