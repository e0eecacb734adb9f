"""Step-up: a fresh TOTP code for approvals; the login code and used codes never pass again."""

from __future__ import annotations

import pytest

from portal.accounts.stepup import StepUpFailed, StepUpForm
from portal.audit.models import AuditEvent
from portal.errors import PermissionDenied
from tests.accounts.factories import create_staff_user, totp_code

pytestmark = pytest.mark.django_db


@pytest.fixture
def approver(db):
    return create_staff_user("abel", roles=["approvers"])


def test_fresh_code_passes(approver, traveller):
    user, device = approver
    from portal.accounts.stepup import verify_step_up

    assert verify_step_up(user=user, token=totp_code(device)) == device


def test_login_code_cannot_be_reused_for_step_up(client, approver, login_post, traveller):
    from portal.accounts.stepup import verify_step_up

    user, device = approver
    code = totp_code(device)
    assert login_post(user.username, token=code).status_code == 302
    traveller.shift(3)
    with pytest.raises(StepUpFailed, match="already used") as caught:
        verify_step_up(user=user, token=code)
    assert isinstance(caught.value, PermissionDenied)
    # The next 30-second code is fresh and passes (past the 1 s back-off of one failure).
    traveller.shift(30)
    assert verify_step_up(user=user, token=totp_code(device)) == device


def test_a_step_up_code_works_once(approver, traveller):
    from portal.accounts.stepup import verify_step_up

    user, device = approver
    code = totp_code(device)
    verify_step_up(user=user, token=code)
    traveller.shift(5)
    with pytest.raises(StepUpFailed):
        verify_step_up(user=user, token=code)


def test_wrong_codes_are_throttled(approver, traveller):
    from portal.accounts.stepup import verify_step_up

    user, device = approver
    good = totp_code(device)
    with pytest.raises(StepUpFailed, match="wrong"):
        verify_step_up(user=user, token=f"{(int(good) + 1) % 1_000_000:06d}")
    with pytest.raises(StepUpFailed, match="Too many wrong codes"):
        verify_step_up(user=user, token=good)
    traveller.shift(2)
    assert verify_step_up(user=user, token=good) == device
    reasons = list(
        AuditEvent.objects.filter(action="otp.step_up_failed").values_list(
            "data__reason", flat=True
        )
    )
    assert reasons == ["wrong_or_reused_code", "throttled"]


def test_backup_codes_do_not_count_as_step_up(approver, traveller):
    from portal.accounts.models import BackupCodeDevice
    from portal.accounts.stepup import verify_step_up

    user, _device = approver
    codes = BackupCodeDevice.objects.create(user=user, name="b").issue_codes()
    with pytest.raises(StepUpFailed):
        verify_step_up(user=user, token=codes[0])


def test_user_without_device_or_inactive_is_refused(db, traveller):
    from portal.accounts.stepup import verify_step_up

    user, _ = create_staff_user("nodevice", roles=["approvers"], with_totp=False)
    with pytest.raises(StepUpFailed, match="no confirmed authenticator"):
        verify_step_up(user=user, token="123456")
    other, device = create_staff_user("gone", roles=["approvers"])
    other.is_active = False
    other.save(update_fields=["is_active"])
    with pytest.raises(StepUpFailed, match="active"):
        verify_step_up(user=other, token=totp_code(device))
    with pytest.raises(StepUpFailed, match="Enter"):
        verify_step_up(user=user, token="  ")


def test_step_up_form_without_user_checks_only_the_shape(approver, traveller):
    _user, device = approver
    assert not StepUpForm({"otp_token": "12ab"}).is_valid()
    code = totp_code(device)
    form = StepUpForm({"otp_token": f" {code[:3]} {code[3:]} "})
    assert form.is_valid()
    assert form.cleaned_data["otp_token"] == code
    device.refresh_from_db()
    assert device.last_t == -1  # nothing was verified, so the code is still usable
