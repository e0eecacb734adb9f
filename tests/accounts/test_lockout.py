"""django-axes: a username+IP lockout after repeated wrong passwords, lifted by a cool-off."""

from __future__ import annotations

import pytest
from django.conf import settings

from portal.audit.models import AuditEvent
from tests.accounts.factories import totp_code

pytestmark = pytest.mark.django_db


def _fail(login_post, username, times):
    return [login_post(username, password=f"wrong-{i}") for i in range(times)]


def test_wrong_passwords_lock_out_with_a_clear_message(client, operator, login_post, traveller):
    user, device = operator
    responses = _fail(login_post, user.username, settings.AXES_FAILURE_LIMIT)
    assert [r.status_code for r in responses[:-1]] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    locked = responses[-1]
    assert locked.status_code == 429
    html = locked.content.decode()
    assert "Too many failed logins" in html
    assert "0:15:00" in html  # the cool-off, so the user knows it ends by itself

    # The right password and code are refused during the cool-off...
    response = login_post(user.username, token=totp_code(device))
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session

    # ...and accepted after it: never a permanent lockout.
    traveller.shift(16 * 60)
    response = login_post(user.username, token=totp_code(device))
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_lockout_is_per_username_and_ip(client, operator, login_post, traveller):
    user, device = operator
    _fail(login_post, user.username, settings.AXES_FAILURE_LIMIT)
    # Same user from another address is not locked out...
    other = client.post(
        "/admin/login/",
        {
            "username": user.username,
            "password": "correct horse battery staple 42",
            "otp_token": totp_code(device),
        },
        REMOTE_ADDR="10.1.2.3",
    )
    assert other.status_code == 302


def test_failed_logins_and_lockout_are_audited_without_the_password(
    client, operator, login_post, traveller
):
    user, _ = operator
    _fail(login_post, user.username, settings.AXES_FAILURE_LIMIT)
    failed = AuditEvent.objects.filter(action="auth.login_failed")
    assert failed.count() == settings.AXES_FAILURE_LIMIT
    for event in failed:
        assert event.data == {"username": "olga"}
        assert event.ip_address == "127.0.0.1"
    locked = AuditEvent.objects.get(action="auth.locked_out")
    assert locked.data == {"username": "olga"}
    dumped = str(list(AuditEvent.objects.values()))
    assert "wrong-" not in dumped


def test_unknown_username_is_audited_as_failed(client, login_post):
    login_post("nobody-here", password="guess")
    event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.data == {"username": "nobody-here"}
    assert event.actor_type == "system"
