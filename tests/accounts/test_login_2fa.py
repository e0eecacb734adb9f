"""The admin login: password plus one code; no admin page opens without a verified device."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY

from portal.accounts.models import BackupCodeDevice
from portal.audit.models import AuditEvent
from tests.accounts.factories import create_staff_user, totp_code

pytestmark = pytest.mark.django_db

ADMIN_PAGES = [
    "/admin/",
    "/admin/auth/user/",
    "/admin/auth/group/",
    "/admin/audit/auditevent/",
    "/admin/audit/auditevent/export/?format=csv",
    "/admin/axes/accessattempt/",
    "/admin/password_change/",
    "/accounts/2fa/backup-codes/",
]


def _assert_sent_to_login(response):
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_anonymous_cannot_open_admin_pages(client, url):
    _assert_sent_to_login(client.get(url))


@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_password_only_session_cannot_open_admin_pages(client, url):
    user, _device = create_staff_user("root", superuser=True)
    client.force_login(user)  # a password login without a verified device
    assert DEVICE_ID_SESSION_KEY not in client.session
    _assert_sent_to_login(client.get(url))


def test_login_without_code_is_refused(client, operator, login_post):
    user, _ = operator
    response = login_post(user.username, token="")
    assert response.status_code == 200
    assert "Enter the code from your authenticator app" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302
    refused = AuditEvent.objects.get(action="auth.otp_failed")
    assert refused.data == {"username": "olga", "reason": "token_required"}


def test_login_with_totp_code_opens_the_admin(client, operator, login_post, traveller):
    user, device = operator
    response = login_post(user.username, token=totp_code(device))
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert client.get("/admin/").status_code == 200
    login = AuditEvent.objects.get(action="auth.login")
    assert login.data == {"method": "totp"}
    assert login.actor_label == "olga"
    assert login.ip_address == "127.0.0.1"


def test_password_is_not_echoed_back_after_a_wrong_code(client, operator, login_post, traveller):
    user, _device = operator
    response = login_post(user.username, token="000000")
    assert response.status_code == 200
    assert "correct horse" not in response.content.decode()


def test_wrong_code_is_refused_then_throttled(client, operator, login_post, traveller):
    user, device = operator
    good = totp_code(device)
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    response = login_post(user.username, token=wrong)
    assert "not valid" in response.content.decode()
    assert "_auth_user_id" not in client.session

    # Immediately after a failure django-otp's back-off refuses even the right code...
    response = login_post(user.username, token=good)
    assert response.status_code == 200
    assert "Verification temporarily disabled" in response.content.decode()
    device.refresh_from_db()
    assert device.throttling_failure_count == 1

    # ...and accepts it once the back-off (1 s after one failure) has passed.
    traveller.shift(2)
    response = login_post(user.username, token=totp_code(device))
    assert response.status_code == 302
    reasons = list(
        AuditEvent.objects.filter(action="auth.otp_failed").values_list("data__reason", flat=True)
    )
    assert reasons == ["invalid_token", "throttled"]


def test_code_of_another_user_is_refused(client, operator, login_post, traveller):
    user, _ = operator
    _other, other_device = create_staff_user("mallory")
    response = login_post(user.username, token=totp_code(other_device))
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_login_code_cannot_be_replayed(client, operator, login_post, traveller):
    user, device = operator
    code = totp_code(device)
    assert login_post(user.username, token=code).status_code == 302
    client.logout()
    traveller.shift(5)  # same 30 s window, and past any back-off
    response = login_post(user.username, token=code)
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_backup_code_logs_in_once(client, operator, login_post):
    user, _device = operator
    backup = BackupCodeDevice.objects.create(user=user, name="backup codes")
    codes = backup.issue_codes()
    assert len(codes) == 10 and len(set(codes)) == 10
    # Stored hashed: no plain code anywhere in the table.
    stored = set(backup.codes.values_list("code_hash", flat=True))
    assert not stored & set(codes)

    response = login_post(user.username, token=codes[3].upper())  # case-insensitive
    assert response.status_code == 302
    assert client.session[DEVICE_ID_SESSION_KEY] == backup.persistent_id
    assert client.get("/admin/").status_code == 200
    assert backup.codes.count() == 9
    used = AuditEvent.objects.get(action="otp.backup_code_used")
    assert used.data == {"remaining": 9}
    assert AuditEvent.objects.get(action="auth.login").data == {"method": "backup_code"}

    client.logout()
    response = login_post(user.username, token=codes[3])
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_unknown_backup_code_is_refused(client, operator, login_post):
    user, _ = operator
    BackupCodeDevice.objects.create(user=user, name="backup codes").issue_codes()
    response = login_post(user.username, token="0123456789")
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_non_staff_user_cannot_log_in_even_with_a_code(client, login_post, traveller):
    user, device = create_staff_user("civilian")
    user.is_staff = False
    user.save(update_fields=["is_staff"])
    response = login_post(user.username, token=totp_code(device))
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_verified_user_is_redirected_from_login_page(client, operator, login_post, traveller):
    user, device = operator
    login_post(user.username, token=totp_code(device))
    response = client.get("/admin/login/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_logout_is_audited(client, operator, login_post, traveller):
    user, device = operator
    login_post(user.username, token=totp_code(device))
    response = client.post("/admin/logout/")
    assert response.status_code == 200
    assert client.get("/admin/").status_code == 302
    logout = AuditEvent.objects.get(action="auth.logout")
    assert logout.data == {"reason": "user"}
    assert logout.actor_label == "olga"
