"""Handling a dead letter outside a replay: assign, resolve, discard; each audited."""

from __future__ import annotations

import pytest

from deadletters import services
from deadletters.errors import InvalidTransition
from deadletters.models import DeadLetterStatus
from portal.audit.models import AuditEvent
from portal.errors import InvalidRequest, PermissionDenied
from tests.accounts.factories import create_staff_user

pytestmark = pytest.mark.django_db


def reload(obj):
    obj.refresh_from_db()
    return obj


def test_assign_to_an_operator_and_back(dead_letter, operator):
    user, _ = operator
    colleague, _ = create_staff_user("carl", roles=["operators"])
    dl = dead_letter()
    services.dead_letter_assign(dead_letter=dl, actor=user, assignee=colleague)
    assert reload(dl).assignee == colleague
    services.dead_letter_assign(dead_letter=dl, actor=user, assignee=None)
    assert reload(dl).assignee is None
    events = AuditEvent.objects.filter(action="dead_letter.assigned").order_by("sequence")
    assert [e.data for e in events] == [
        {"assignee": "carl", "previous": None},
        {"assignee": None, "previous": "carl"},
    ]
    auditor, _ = create_staff_user("aud", roles=["auditors"])
    with pytest.raises(InvalidRequest, match="not an active operator"):
        services.dead_letter_assign(dead_letter=dl, actor=user, assignee=auditor)


@pytest.mark.parametrize(
    ("close", "status", "action"),
    [
        (services.dead_letter_resolve, DeadLetterStatus.RESOLVED, "dead_letter.resolved"),
        (services.dead_letter_discard, DeadLetterStatus.DISCARDED, "dead_letter.discarded"),
    ],
)
def test_close_needs_a_reason_and_an_open_dead_letter(
    dead_letter, operator, replay_requested, close, status, action
):
    user, _ = operator
    dl = dead_letter()
    with pytest.raises(InvalidRequest, match="reason is required"):
        close(dead_letter=dl, actor=user, reason="")
    close(dead_letter=dl, actor=user, reason="handled by phone", ip_address="10.0.0.1")
    assert reload(dl).status == status
    event = AuditEvent.objects.get(action=action)
    assert (event.object_id, event.data["reason"], event.ip_address) == (
        str(dl.public_id),
        "handled by phone",
        "10.0.0.1",
    )
    with pytest.raises(InvalidTransition, match="Only open dead letters"):
        close(dead_letter=dl, actor=user, reason="again")
    held = dead_letter()
    replay_requested(held)
    with pytest.raises(InvalidTransition, match="decide its replay request first"):
        close(dead_letter=held, actor=user, reason="x")


def test_only_operators_of_the_tenant_handle_dead_letters(dead_letter, other_tenant):
    dl = dead_letter()
    for user, _ in (
        create_staff_user("aud", roles=["auditors"]),
        create_staff_user("ella", roles=["operators"], tenants=[other_tenant]),
    ):
        with pytest.raises(PermissionDenied):
            services.dead_letter_resolve(dead_letter=dl, actor=user, reason="x")
        with pytest.raises(PermissionDenied):
            services.dead_letter_assign(dead_letter=dl, actor=user, assignee=None)
    assert reload(dl).status == DeadLetterStatus.OPEN
    assert not AuditEvent.objects.filter(action__startswith="dead_letter.").exists()
