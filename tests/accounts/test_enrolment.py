"""First login without a TOTP device: password, QR code and secret, one code, backup codes."""

from __future__ import annotations

import base64
import re

import pytest
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.accounts.invitations import invitation_issue
from portal.accounts.models import BackupCodeDevice
from portal.audit.models import AuditEvent
from portal.audit.services import Actor
from tests.accounts.factories import create_staff_user

pytestmark = pytest.mark.django_db


def _secret_from_page(html: str) -> bytes:
    found = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', html)
    assert found is not None
    secret = found.group(1).replace(" ", "")
    return base64.b32decode(secret + "=" * (-len(secret) % 8))


def _code(key: bytes, steps_ahead: int = 0) -> str:
    import time

    totp = TOTP(key)
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


@pytest.fixture
def newcomer(db):
    user, _ = create_staff_user("nina", roles=["operators"], with_totp=False)
    return user


def _invite(client, user):
    """Open a fresh invitation for ``user`` in ``client``'s session (invite_staff's link)."""
    _, token = invitation_issue(user=user, actor=Actor.system("tests"))
    response = client.get(f"/accounts/invitation/{token}/")
    assert response.status_code == 302
    return token


def _start(client, login_post, user):
    _invite(client, user)
    response = login_post(user.username)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/2fa/enrol/"
    return client.get("/accounts/2fa/enrol/")


def test_first_login_leads_to_enrolment_without_logging_in(client, newcomer, login_post):
    page = _start(client, login_post, newcomer)
    assert page.status_code == 200
    assert "_auth_user_id" not in client.session
    html = page.content.decode()
    assert "<svg" in html  # the QR code, rendered locally
    assert "otpauth" not in html  # only the picture, not a link to a QR service
    device = TOTPDevice.objects.get(user=newcomer)
    assert not device.confirmed
    assert _secret_from_page(html) == device.bin_key
    assert page["Cache-Control"].startswith("max-age=0")
    # Still nothing opens in the admin.
    assert client.get("/admin/").status_code == 302


def test_wrong_password_never_reaches_enrolment(client, newcomer, login_post):
    response = login_post(newcomer.username, password="wrong password entirely")
    assert response.status_code == 200
    assert not TOTPDevice.objects.filter(user=newcomer).exists()
    assert client.get("/accounts/2fa/enrol/").status_code == 400


def test_confirming_with_a_valid_code_logs_in_and_shows_backup_codes_once(
    client, newcomer, login_post, traveller
):
    html = _start(client, login_post, newcomer).content.decode()
    key = _secret_from_page(html)
    response = client.post("/accounts/2fa/enrol/", {"otp_token": _code(key)})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    codes = re.findall(r"<li><code>([0-9a-f]{20})</code></li>", response.content.decode())
    assert len(codes) == 10

    device = TOTPDevice.objects.get(user=newcomer)
    assert device.confirmed
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert client.get("/admin/").status_code == 200
    backup = BackupCodeDevice.objects.get(user=newcomer)
    assert backup.codes.count() == 10
    assert not set(backup.codes.values_list("code_hash", flat=True)) & set(codes)

    actions = list(
        AuditEvent.objects.exclude(action="role.granted").values_list("action", flat=True)
    )
    assert actions == [
        "staff.invited",
        "otp.enrolment_started",
        "otp.device_confirmed",
        "otp.backup_codes_issued",
        "auth.login",
    ]
    assert AuditEvent.objects.get(action="auth.login").data == {"method": "enrolment"}

    # The codes are not shown again: the enrolment is over.
    assert client.get("/accounts/2fa/enrol/").status_code == 400


def test_wrong_code_keeps_the_device_unconfirmed(client, newcomer, login_post, traveller):
    html = _start(client, login_post, newcomer).content.decode()
    key = _secret_from_page(html)
    good = _code(key)
    wrong = f"{(int(good) + 7) % 1_000_000:06d}"
    response = client.post("/accounts/2fa/enrol/", {"otp_token": wrong})
    assert response.status_code == 200
    assert "not valid" in response.content.decode()
    assert not TOTPDevice.objects.get(user=newcomer).confirmed
    assert "_auth_user_id" not in client.session
    # Throttled right after the failure, then accepted.
    response = client.post("/accounts/2fa/enrol/", {"otp_token": good})
    assert "Too many wrong codes" in response.content.decode()
    traveller.shift(2)
    response = client.post("/accounts/2fa/enrol/", {"otp_token": good})
    assert TOTPDevice.objects.get(user=newcomer).confirmed
    reasons = list(
        AuditEvent.objects.filter(action="otp.enrolment_failed").values_list(
            "data__reason", flat=True
        )
    )
    assert reasons == ["wrong_code", "throttled"]


def test_enrolment_expires_after_ten_minutes(client, newcomer, login_post, traveller):
    html = _start(client, login_post, newcomer).content.decode()
    key = _secret_from_page(html)
    traveller.shift(11 * 60)
    response = client.post("/accounts/2fa/enrol/", {"otp_token": _code(key)})
    assert response.status_code == 400
    assert not TOTPDevice.objects.get(user=newcomer).confirmed


def test_a_new_login_replaces_the_unconfirmed_secret(client, newcomer, login_post):
    first = _secret_from_page(_start(client, login_post, newcomer).content.decode())
    second = _secret_from_page(_start(client, login_post, newcomer).content.decode())
    assert first != second
    assert TOTPDevice.objects.filter(user=newcomer).count() == 1


def test_user_with_a_device_is_not_offered_enrolment(client, operator, login_post):
    user, _device = operator
    response = login_post(user.username)
    assert response.status_code == 200
    assert TOTPDevice.objects.filter(user=user).count() == 1


def test_deactivated_user_cannot_finish_enrolment(client, newcomer, login_post, traveller):
    key = _secret_from_page(_start(client, login_post, newcomer).content.decode())
    newcomer.is_active = False
    newcomer.save(update_fields=["is_active"])
    response = client.post("/accounts/2fa/enrol/", {"otp_token": _code(key)})
    assert response.status_code == 400
    assert not TOTPDevice.objects.filter(user=newcomer, confirmed=True).exists()


def test_backup_codes_can_be_regenerated_with_a_fresh_code(client, operator, traveller):
    from tests.accounts.factories import totp_code, verified_login

    user, device = operator
    old = BackupCodeDevice.objects.create(user=user, name="backup codes").issue_codes()
    verified_login(client, user, device)
    page = client.get("/accounts/2fa/backup-codes/")
    assert page.status_code == 200
    assert 'id="backup-codes-remaining">10<' in page.content.decode()

    response = client.post("/accounts/2fa/backup-codes/", {"otp_token": "123"})
    assert "6-digit" in response.content.decode()

    response = client.post("/accounts/2fa/backup-codes/", {"otp_token": totp_code(device)})
    new = re.findall(r"<li><code>([0-9a-f]{20})</code></li>", response.content.decode())
    assert len(new) == 10 and not set(new) & set(old)
    backup = BackupCodeDevice.objects.get(user=user)
    assert not backup.verify_token(old[0])
    traveller.shift(2)  # past the back-off from the failed check above
    assert backup.verify_token(new[0])
    issued = AuditEvent.objects.filter(action="otp.backup_codes_issued").last()
    assert issued is not None
    assert issued.data == {"count": 10, "reason": "regenerated"}
