"""Deciding a replay: four eyes (an approver who did not request it) plus a fresh TOTP code."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction

from deadletters import services
from deadletters.errors import InvalidTransition, ReplayRequestExpired, SelfApprovalRefused
from deadletters.models import DeadLetterStatus, ReplayItemOutcome, ReplayRequest, ReplayStatus
from portal.accounts.stepup import StepUpFailed
from portal.audit.models import AuditEvent
from portal.errors import InvalidRequest, PermissionDenied
from tests.accounts.factories import PASSWORD, create_staff_user, totp_code

pytestmark = pytest.mark.django_db


def reload(obj):
    obj.refresh_from_db()
    return obj


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def actions() -> list[str]:
    return list(AuditEvent.objects.order_by("sequence").values_list("action", flat=True))


def test_another_approver_with_a_fresh_code_approves(
    frozen_clock, traveller, replay_requested, approver, django_capture_on_commit_callbacks
):
    user, device = approver
    request = replay_requested()
    with django_capture_on_commit_callbacks() as callbacks:
        approved = services.replay_request_approve(
            request=request, approver=user, otp_token=totp_code(device), ip_address="10.9.8.7"
        )
    assert len(callbacks) == 1  # the execution task, queued only once the approval commits
    request = reload(request)
    assert request.status == ReplayStatus.APPROVED == approved.status
    assert (request.decided_by, request.decided_at) == (user, frozen_clock.now)
    event = AuditEvent.objects.get(action="replay.approved")
    assert (event.actor_label, event.object_id, event.ip_address) == (
        "abel",
        str(request.public_id),
        "10.9.8.7",
    )
    assert event.data == {"requested_by": "olga", "step_up": True}


def test_requester_cannot_decide_their_own_request(traveller, dead_letter):
    both, device = create_staff_user("bob", roles=["operators", "approvers"])
    request = services.replay_request_create(
        requested_by=both, reason="mine", dead_letter_ids=[dead_letter().public_id]
    )
    with pytest.raises(SelfApprovalRefused, match="different approver"):
        services.replay_request_approve(request=request, approver=both, otp_token=totp_code(device))
    with pytest.raises(SelfApprovalRefused):
        services.replay_request_reject(
            request=request, approver=both, otp_token=totp_code(device), reason="no"
        )
    assert reload(request).status == ReplayStatus.PENDING
    assert reload(device).last_t == -1  # refused before the code was spent
    # Superusers hold every role, but not a second pair of eyes.
    boss, boss_device = create_staff_user("boss", superuser=True)
    own = services.replay_request_create(
        requested_by=boss, reason="mine too", dead_letter_ids=[dead_letter().public_id]
    )
    with pytest.raises(SelfApprovalRefused):
        services.replay_request_approve(
            request=own, approver=boss, otp_token=totp_code(boss_device)
        )


@pytest.mark.parametrize("roles", [["operators"], ["auditors"], ["platform_admins"]])
def test_only_approvers_decide(traveller, replay_requested, roles):
    user, device = create_staff_user("nemo", roles=roles)
    request = replay_requested()
    with pytest.raises(PermissionDenied, match="approvers role"):
        services.replay_request_approve(request=request, approver=user, otp_token=totp_code(device))
    with pytest.raises(PermissionDenied, match="approvers role"):
        services.replay_request_reject(
            request=request, approver=user, otp_token=totp_code(device), reason="no"
        )
    assert reload(request).status == ReplayStatus.PENDING


def test_approver_restricted_to_other_tenants_cannot_decide(
    traveller, replay_requested, other_tenant
):
    user, device = create_staff_user("gina", roles=["approvers"], tenants=[other_tenant])
    request = replay_requested()
    with pytest.raises(PermissionDenied, match="outside your assigned tenants"):
        services.replay_request_approve(request=request, approver=user, otp_token=totp_code(device))
    assert reload(request).status == ReplayStatus.PENDING


def test_database_refuses_a_decider_who_is_the_requester(replay_requested):
    request = replay_requested()
    with pytest.raises(IntegrityError), transaction.atomic():
        ReplayRequest.objects.filter(pk=request.pk).update(decided_by_id=request.requested_by_id)
    with pytest.raises(IntegrityError), transaction.atomic():
        request.decided_by = request.requested_by
        request.save(update_fields=["decided_by"])
    assert ReplayRequest.objects.get(pk=request.pk).decided_by_id is None


def test_wrong_code_is_refused_and_audited(traveller, replay_requested, approver):
    user, device = approver
    request = replay_requested()
    with pytest.raises(StepUpFailed, match="wrong or was already used"):
        services.replay_request_approve(
            request=request, approver=user, otp_token=wrong(totp_code(device))
        )
    assert reload(request).status == ReplayStatus.PENDING
    assert reload(request).decided_by is None
    event = AuditEvent.objects.get(action="otp.step_up_failed")
    assert (event.actor_label, event.data) == ("abel", {"reason": "wrong_or_reused_code"})
    assert "replay.approved" not in actions()
    # The failure counter stuck although the approval was refused (django-otp throttling).
    assert reload(device).throttling_failure_count == 1


def test_login_code_cannot_be_reused_to_approve(client, traveller, replay_requested, approver):
    user, device = approver
    request = replay_requested()
    code = totp_code(device)
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": user.username, "password": PASSWORD, "otp_token": code},
    )
    assert response.status_code == 302, response.content[:500]
    traveller.shift(5)  # same 30-second window: the code is still current, but spent
    with pytest.raises(StepUpFailed, match="already used"):
        services.replay_request_approve(request=request, approver=user, otp_token=code)
    assert reload(request).status == ReplayStatus.PENDING
    traveller.shift(30)  # the next code is fresh (and the 1 s back-off has passed)
    services.replay_request_approve(request=request, approver=user, otp_token=totp_code(device))
    assert reload(request).status == ReplayStatus.APPROVED


def test_a_step_up_code_works_for_one_decision_only(
    traveller, replay_requested, dead_letter, approver
):
    user, device = approver
    first, second = replay_requested(dead_letter()), replay_requested(dead_letter())
    code = totp_code(device)
    services.replay_request_approve(request=first, approver=user, otp_token=code)
    traveller.shift(3)
    with pytest.raises(StepUpFailed, match="already used"):
        services.replay_request_reject(request=second, approver=user, otp_token=code, reason="no")
    assert reload(second).status == ReplayStatus.PENDING


def test_wrong_codes_are_throttled(traveller, replay_requested, approver):
    user, device = approver
    request = replay_requested()
    good = totp_code(device)
    with pytest.raises(StepUpFailed, match="wrong"):
        services.replay_request_approve(request=request, approver=user, otp_token=wrong(good))
    # Right away even the right code is refused: django-otp backs off after a failure.
    with pytest.raises(StepUpFailed, match="Too many wrong codes"):
        services.replay_request_approve(request=request, approver=user, otp_token=good)
    assert reload(request).status == ReplayStatus.PENDING
    reasons = list(
        AuditEvent.objects.filter(action="otp.step_up_failed")
        .order_by("sequence")
        .values_list("data__reason", flat=True)
    )
    assert reasons == ["wrong_or_reused_code", "throttled"]
    traveller.shift(2)  # past the back-off
    services.replay_request_approve(request=request, approver=user, otp_token=good)
    assert reload(request).status == ReplayStatus.APPROVED


def test_reject_needs_a_reason_and_reopens_the_dead_letters(
    frozen_clock, traveller, dead_letter, replay_requested, approver
):
    user, device = approver
    dls = [dead_letter(), dead_letter()]
    request = replay_requested(*dls)
    with pytest.raises(InvalidRequest, match="reason for the rejection is required"):
        services.replay_request_reject(
            request=request, approver=user, otp_token=totp_code(device), reason=" "
        )
    assert reload(device).last_t == -1  # no code was spent on a form error
    services.replay_request_reject(
        request=request, approver=user, otp_token=totp_code(device), reason="gateway still down"
    )
    request = reload(request)
    assert request.status == ReplayStatus.REJECTED
    assert (request.decided_by, request.decision_reason) == (user, "gateway still down")
    assert request.finished_at == frozen_clock.now
    assert set(request.items.values_list("outcome", "detail")) == {
        (ReplayItemOutcome.SKIPPED, "request rejected")
    }
    assert {reload(dl).status for dl in dls} == {DeadLetterStatus.OPEN}
    event = AuditEvent.objects.get(action="replay.rejected")
    assert event.actor_label == "abel"
    assert event.data["reason"] == "gateway still down"
    assert event.data["dead_letters_reopened"] == 2
    # Re-opened dead letters can be requested again.
    assert replay_requested(*dls).items.count() == 2


def test_a_decided_request_cannot_be_decided_again(traveller, replay_requested, approver):
    user, device = approver
    other, other_device = create_staff_user("ava", roles=["approvers"])
    request = replay_requested()
    services.replay_request_reject(
        request=request, approver=user, otp_token=totp_code(device), reason="no"
    )
    with pytest.raises(InvalidTransition, match="already rejected"):
        services.replay_request_approve(
            request=request, approver=other, otp_token=totp_code(other_device)
        )
    assert reload(other_device).last_t == -1


def test_pending_requests_expire_after_the_configured_time(
    frozen_clock, traveller, dead_letter, replay_requested, approver, settings
):
    settings.REPLAY_REQUEST_TTL_S = 3600
    dls = [dead_letter(), dead_letter()]
    request = replay_requested(*dls)
    assert request.expires_at == frozen_clock.now + dt.timedelta(hours=1)
    frozen_clock.advance(3599)
    assert services.replay_requests_expire() == 0
    assert reload(request).status == ReplayStatus.PENDING
    frozen_clock.advance(1)
    # Past its time, the request can no longer be decided, even before the expiry job ran.
    user, device = approver
    with pytest.raises(ReplayRequestExpired, match="expired"):
        services.replay_request_approve(request=request, approver=user, otp_token=totp_code(device))
    assert reload(device).last_t == -1
    assert services.replay_requests_expire() == 1
    request = reload(request)
    assert request.status == ReplayStatus.EXPIRED
    assert request.finished_at == frozen_clock.now
    assert {reload(dl).status for dl in dls} == {DeadLetterStatus.OPEN}
    assert set(request.items.values_list("outcome", "detail")) == {
        (ReplayItemOutcome.SKIPPED, "request expired")
    }
    event = AuditEvent.objects.get(action="replay.expired")
    assert (event.actor_type, event.object_id) == ("system", str(request.public_id))
    assert event.data["dead_letters_reopened"] == 2
    assert services.replay_requests_expire() == 0  # nothing left to expire
    with pytest.raises(InvalidTransition):
        services.replay_request_approve(request=request, approver=user, otp_token=totp_code(device))


def test_expiry_task_and_schedule(frozen_clock, replay_requested, settings):
    from django_q.models import Schedule

    from deadletters import schedules, tasks

    settings.REPLAY_REQUEST_TTL_S = 60
    request = replay_requested()
    frozen_clock.advance(61)
    assert tasks.replay_requests_expire() == 1
    assert reload(request).status == ReplayStatus.EXPIRED
    assert schedules.ensure_schedules() == [schedules.EXPIRE_SCHEDULE]
    schedules.ensure_schedules()  # idempotent
    schedule = Schedule.objects.get(name=schedules.EXPIRE_SCHEDULE)
    assert schedule.func == "deadletters.tasks.replay_requests_expire"
    assert (schedule.schedule_type, schedule.minutes) == (Schedule.MINUTES, 1)
