"""Findings 2 and 3: no one person satisfies four-eyes. A password alone never enrols an
unenrolled staff account (an invitation from `manage.py invite_staff` must be opened in
the same browser, once, before it expires); a 2FA reset needs a new invitation; roles
never change through the portal."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.accounts.invitations import invitation_issue
from portal.accounts.models import StaffInvitation
from portal.accounts.twofactor import two_factor_reset
from portal.audit.models import AuditEvent
from portal.audit.services import Actor
from tests.accounts.factories import create_staff_user, staff_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def unenrolled(db):
    user, _ = create_staff_user("nina", roles=["operators"], with_totp=False)
    return user


def _invite_link(username: str) -> str:
    out = io.StringIO()
    call_command("invite_staff", username, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def test_a_password_alone_never_reaches_enrolment(client, unenrolled, login_post):
    response = login_post("nina")

    assert response.status_code == 200
    assert "invitation" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=unenrolled).exists()
    assert client.get("/accounts/2fa/enrol/").status_code == 400
    refused = AuditEvent.objects.get(action="auth.enrolment_refused")
    assert refused.data["reason"] == "no_invitation"


def test_the_invitation_link_leads_to_enrolment_once(client, unenrolled, login_post):
    link = _invite_link("nina")
    assert link.startswith("/accounts/invitation/")
    invitation = StaffInvitation.objects.get(user=unenrolled)
    assert invitation.token_sha256 not in link  # only the hash is stored

    assert client.get(link).status_code == 302
    response = login_post("nina")
    assert response.status_code == 302 and response["Location"] == "/accounts/2fa/enrol/"

    # Consumed by the confirmation; the link itself is never reusable afterwards.
    from tests.accounts.test_enrolment import _code, _secret_from_page

    key = _secret_from_page(client.get("/accounts/2fa/enrol/").content.decode())
    assert client.post("/accounts/2fa/enrol/", {"otp_token": _code(key)}).status_code == 200
    invitation.refresh_from_db()
    assert invitation.used_at is not None
    assert client.get(link).status_code == 404


def test_an_invitation_opened_for_someone_else_does_not_enrol(client, unenrolled, login_post):
    create_staff_user("omar", with_totp=False)
    assert client.get(_invite_link("omar")).status_code == 302

    assert login_post("nina").status_code == 200
    assert not TOTPDevice.objects.filter(user=unenrolled).exists()


def test_an_expired_invitation_is_refused(client, unenrolled, login_post, traveller, settings):
    link = _invite_link("nina")
    traveller.shift(settings.STAFF_INVITATION_TTL_S + 1)
    assert client.get(link).status_code == 404
    assert login_post("nina").status_code == 200


def test_an_invitation_expiring_mid_enrolment_is_not_consumed(
    client, unenrolled, login_post, traveller
):
    _, token = invitation_issue(user=unenrolled, actor=Actor.system("tests"), ttl_s=60)
    client.get(f"/accounts/invitation/{token}/")
    login_post("nina")
    from tests.accounts.test_enrolment import _code, _secret_from_page

    key = _secret_from_page(client.get("/accounts/2fa/enrol/").content.decode())
    traveller.shift(90)
    response = client.post("/accounts/2fa/enrol/", {"otp_token": _code(key)})
    assert response.status_code == 200
    assert "invitation" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=unenrolled, confirmed=True).exists()


def test_a_2fa_reset_needs_a_new_invitation(client, login_post):
    admin_user, _ = create_staff_user("pat", roles=["platform_admins"])
    user, _ = create_staff_user("nina", roles=["operators"])
    two_factor_reset(actor=admin_user, user=user)

    assert login_post("nina").status_code == 200
    assert not TOTPDevice.objects.filter(user=user).exists()


def test_a_reset_revokes_an_open_invitation(client, unenrolled, login_post):
    link = _invite_link("nina")
    admin_user, _ = create_staff_user("pat", roles=["platform_admins"])
    two_factor_reset(actor=admin_user, user=unenrolled)

    assert client.get(link).status_code == 404


def test_invite_staff_refuses_an_enrolled_or_unknown_user(db):
    create_staff_user("olga")
    with pytest.raises(CommandError, match="already has an authenticator"):
        call_command("invite_staff", "olga")
    with pytest.raises(CommandError, match="No user"):
        call_command("invite_staff", "ghost")


def test_invitations_are_audited(unenrolled):
    _invite_link("nina")
    event = AuditEvent.objects.get(action="staff.invited")
    assert event.actor_label == "manage.py invite_staff"
    assert event.data["username"] == "nina"
    assert dt.datetime.fromisoformat(event.data["expires_at"])


def test_a_platform_admin_cannot_make_an_approver_in_the_portal(db):
    """The reproduced chain of finding 2, stopped at its first step."""
    client = staff_client("pat", roles=["platform_admins", "operators"])
    # The account a platform admin may still create in the admin (no role, no device).
    create_staff_user("sock", with_totp=False)
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    sock = get_user_model().objects.get(username="sock")
    change = client.get(f"/admin/auth/user/{sock.pk}/change/")
    assert "groups" not in change.context["adminform"].form.fields
    approvers = Group.objects.get(name="approvers")
    assert not sock.groups.filter(pk=approvers.pk).exists()
