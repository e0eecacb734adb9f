"""Helpers for the browser tests: screenshots, styling check, login, TOTP codes."""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path
from typing import Any

from django_otp.oath import TOTP

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"


def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot to test-artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def assert_styled(page: Any) -> None:
    """The admin stylesheet (served by the live server) is applied, not bare HTML."""
    header_bg = page.evaluate(
        "() => getComputedStyle(document.querySelector('#header')).backgroundColor"
    )
    assert header_bg not in ("", "rgba(0, 0, 0, 0)", "transparent"), header_bg
    assert page.foreign_requests == [], page.foreign_requests


def code_for(secret_base32: str, *, steps_ahead: int = 0) -> str:
    """The TOTP code of a base32 secret (as shown to a user), now or a few steps ahead."""
    secret = "".join(secret_base32.split()).upper()
    totp = TOTP(base64.b32decode(secret + "=" * (-len(secret) % 8)))
    totp.time = time.time() + steps_ahead * 30
    return f"{totp.token():06d}"


def fresh_code(device: Any) -> str:
    """A code ``device`` will accept now and has not seen yet (TOTP codes are single-use).

    django-otp refuses any time step at or before the last one it accepted, so after a
    login in this 30 s window the next acceptable code is the next step's, which its
    tolerance of one step still lets in.
    """
    device.refresh_from_db()
    now_step = int((time.time() - device.t0) // device.step) + device.drift
    step = max(now_step, device.last_t + 1)
    assert step <= now_step + device.tolerance, "no unused code inside the tolerance window"
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, 0)
    totp.time = device.t0 + step * device.step
    return f"{totp.token():0{device.digits}d}"


def log_in(
    page: Any, username: str, password: str, code: str = "", *, path: str = "/admin/"
) -> None:
    """Fill and submit the admin login form (reached by opening ``path``)."""
    page.goto(path)
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.fill("#id_otp_token", code)
    page.click("#login-form input[type=submit]")
    page.wait_for_load_state()


def log_out(page: Any) -> None:
    page.click("#logout-form button")
    page.wait_for_load_state()
