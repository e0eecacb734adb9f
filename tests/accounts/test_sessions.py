"""Idle timeout (cookie age, refreshed by activity) and absolute timeout from login."""

from __future__ import annotations

import pytest
from django.conf import settings

from portal.audit.models import AuditEvent
from tests.accounts.factories import totp_code

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client, operator, login_post, traveller):
    user, device = operator
    assert login_post(user.username, token=totp_code(device)).status_code == 302
    return user


def test_activity_keeps_the_session_alive_until_the_absolute_timeout(client, logged_in, traveller):
    step = settings.SESSION_COOKIE_AGE - 60  # always just inside the idle timeout
    elapsed = 0
    while elapsed + step < settings.SESSION_ABSOLUTE_TIMEOUT_S:
        traveller.shift(step)
        elapsed += step
        assert client.get("/admin/").status_code == 200, f"logged out after {elapsed}s"

    traveller.shift(step)  # past the absolute timeout, though active
    response = client.get("/admin/auth/user/")
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/?next=/admin/auth/user/"
    assert "_auth_user_id" not in client.session
    page = client.get(response["Location"])
    assert "session reached its maximum length" in page.content.decode()
    logout = AuditEvent.objects.get(action="auth.logout")
    assert logout.data == {"reason": "absolute_timeout"}


def test_idle_session_expires(client, logged_in, traveller):
    traveller.shift(settings.SESSION_COOKIE_AGE - 30)
    assert client.get("/admin/").status_code == 200
    traveller.shift(settings.SESSION_COOKIE_AGE + 1)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_session_without_a_login_time_counts_as_expired(client, logged_in):
    session = client.session
    del session["portal_login_at"]
    session.save()
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_session_cookie_flags(client, operator, login_post, traveller):
    user, device = operator
    response = login_post(user.username, token=totp_code(device))
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == settings.SESSION_COOKIE_AGE
