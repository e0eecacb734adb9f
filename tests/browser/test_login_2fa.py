"""The 2FA admin in a real browser: no page without a code, first-login enrolment, throttling."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.accounts.invitations import invitation_issue
from portal.accounts.models import BackupCodeDevice
from portal.audit.services import Actor
from tests.accounts.factories import PASSWORD, create_staff_user
from tests.browser.helpers import assert_styled, code_for, fresh_code, log_in, log_out, shot

pytestmark = [
    pytest.mark.browser,
    # The live server needs committed data. serialized_rollback: each test starts from what
    # the migrations made (the role groups, the audit chain head), as a fresh install does,
    # even after an earlier transactional test flushed it.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    # WhiteNoise warns that collectstatic has not run; the live server serves static itself.
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

PROTECTED = ["/admin/", "/admin/intents/intent/", "/admin/deadletters/deadletter/"]


def assert_on_login_page(page, *, next_path: str | None = None) -> None:
    url = urlsplit(page.url)
    assert url.path == "/admin/login/", page.url
    if next_path is not None:
        assert parse_qs(url.query).get("next") == [next_path], page.url
    assert page.locator("#login-form").is_visible()


def wrong_code(device) -> str:
    good = int(fresh_code(device))
    return f"{(good + 500_000) % 1_000_000:06d}"


def test_password_without_a_valid_code_opens_no_admin_page(page):
    _user, device = create_staff_user("olga", roles=["operators"], superuser=True)

    page.goto("/admin/")
    assert_on_login_page(page, next_path="/admin/")
    assert_styled(page)
    shot(page, "login")

    # Right password, no code.
    log_in(page, "olga", PASSWORD, "")
    assert_on_login_page(page)
    assert "Enter the code from your authenticator app" in page.inner_text("#content")
    for path in PROTECTED:
        page.goto(path)
        assert_on_login_page(page, next_path=path)

    # Right password, wrong code.
    log_in(page, "olga", PASSWORD, wrong_code(device))
    assert_on_login_page(page)
    assert "That code is not valid" in page.inner_text("#content")
    shot(page, "login-wrong-code")
    for path in PROTECTED:
        page.goto(path)
        assert_on_login_page(page, next_path=path)
    # Whatever session the browser holds, no device was verified in it.
    sessions = [c["value"] for c in page.context.cookies() if c["name"] == "sessionid"]
    assert not any(_is_verified_session(key) for key in sessions)


def _is_verified_session(session_key: str) -> bool:
    from django.contrib.sessions.backends.db import SessionStore
    from django_otp import DEVICE_ID_SESSION_KEY

    return DEVICE_ID_SESSION_KEY in SessionStore(session_key=session_key).load()


def test_first_login_enrols_then_logs_in_with_a_fresh_code(page):
    user, _ = create_staff_user("nina", roles=["operators"], with_totp=False)

    # A password alone never enrols (issue 11): the login asks for the invitation.
    log_in(page, "nina", PASSWORD, "")
    assert "/accounts/2fa/enrol/" not in page.url
    assert "invitation link" in page.inner_text("#content")

    # The one-time link of `manage.py invite_staff`, opened in this browser.
    _, token = invitation_issue(user=user, actor=Actor.system("tests"))
    page.goto(f"/accounts/invitation/{token}/")
    page.wait_for_url("**/admin/login/**")
    log_in(page, "nina", PASSWORD, "", path=page.url)
    page.wait_for_url("**/accounts/2fa/enrol/")
    assert_styled(page)
    # The QR code is an inline SVG rendered by the server: no image from anywhere else.
    qr = page.locator("#totp-qr svg")
    assert qr.is_visible()
    assert qr.bounding_box()["width"] > 100
    assert page.locator("#totp-qr img").count() == 0
    secret = page.inner_text("#totp-secret")
    assert len(secret.replace(" ", "")) == 32
    shot(page, "enrol")

    # A wrong code is refused on the page; the device stays unconfirmed.
    page.fill("#id_otp_token", f"{(int(code_for(secret)) + 1) % 1_000_000:06d}")
    page.click("#enrol-form input[type=submit]")
    page.wait_for_load_state()
    assert "not valid" in page.inner_text("#enrol-form")
    assert not TOTPDevice.objects.filter(user__username="nina", confirmed=True).exists()

    # The right code, after django-otp's one-second back-off: time moves on to 2 s into
    # the next 30 s step and stays in that clock until the end, so enrolment uses step S
    # and the next login step S + 1, inside the tolerance (a real-clock login right after
    # an enrolment at a later step could find no unused code).
    now = dt.datetime.now(tz=dt.UTC).timestamp()
    next_step = dt.datetime.fromtimestamp((now // 30 + 1) * 30 + 2, tz=dt.UTC)
    with time_machine.travel(next_step, tick=True):
        page.fill("#id_otp_token", code_for(secret, steps_ahead=0))
        page.click("#enrol-form input[type=submit]")
        page.wait_for_selector("#backup-codes")
        codes = page.locator("#backup-codes li").all_inner_texts()
        assert len(codes) == 10 and len(set(codes)) == 10
        assert BackupCodeDevice.objects.get(user__username="nina").codes.count() == 10
        # Two aligned columns, and a download of exactly these codes, one per line.
        boxes = [li.bounding_box() for li in page.locator("#backup-codes li").all()]
        assert len({round(box["x"]) for box in boxes}) == 2
        href = page.get_attribute("#backup-codes-download", "href")
        assert href.startswith("data:text/plain;charset=utf-8,")
        assert unquote(href.split(",", 1)[1]).splitlines() == codes
        shot(page, "backup-codes")

        page.click("#continue-link")
        page.wait_for_url("**/admin/")
        assert "NINA" in page.locator("#user-tools").inner_text().upper()
        assert_styled(page)
        shot(page, "admin-index")

        log_out(page)
        page.goto("/admin/")
        assert_on_login_page(page, next_path="/admin/")

        device = TOTPDevice.objects.get(user__username="nina", confirmed=True)
        log_in(page, "nina", PASSWORD, fresh_code(device))
        page.wait_for_url("**/admin/")
        assert page.locator("#logout-form").is_visible()
        page.goto("/admin/intents/intent/")
        assert "/admin/intents/intent/" in page.url and "login" not in page.url


def test_wrong_codes_are_refused_then_throttled(page):
    _user, device = create_staff_user("olga", roles=["operators"])
    assert device is not None
    # The server's clock stands still (Playwright's timers run on the monotonic clock,
    # which time-machine leaves alone), so a slow browser cannot outlast the back-off.
    with time_machine.travel(dt.datetime.now(tz=dt.UTC), tick=False) as traveller:
        good = fresh_code(device)
        log_in(page, "olga", PASSWORD, wrong_code(device))
        assert "That code is not valid" in page.inner_text("#content")

        # Right after a failure even the right code is refused, with a message.
        log_in(page, "olga", PASSWORD, good)
        assert_on_login_page(page)
        assert "Verification temporarily disabled" in page.inner_text("#content")
        shot(page, "login-throttled")
        device.refresh_from_db()
        assert device.throttling_failure_count == 1

        # Once the back-off (1 s after one failure) has passed, the code works.
        traveller.shift(2)
        log_in(page, "olga", PASSWORD, fresh_code(device))
        page.wait_for_url("**/admin/")
    assert page.locator("#logout-form").is_visible()


def test_repeated_wrong_passwords_lock_the_account_with_a_message(page, settings):
    create_staff_user("olga", roles=["operators"])
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(page, "olga", "not the password", "")
    body = page.inner_text("body")
    assert "Too many failed logins" in body
    shot(page, "locked-out")
    # Even the right password is now refused.
    log_in(page, "olga", PASSWORD, "")
    assert "Too many failed logins" in page.inner_text("body")
    assert get_user_model().objects.filter(username="olga").exists()
