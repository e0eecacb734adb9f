from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from tests.accounts.factories import PASSWORD, create_staff_user

START = dt.datetime(2026, 3, 2, 9, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def traveller():
    """Wall clock frozen at START (time.time, timezone.now); ``.shift(seconds)`` moves it."""
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def operator(db):
    return create_staff_user("olga", roles=["operators"])


@pytest.fixture
def login_post(client):
    """POST the admin login form; returns the response (not followed)."""

    def _post(username: str, token: str = "", password: str = PASSWORD, **extra):
        data = {"username": username, "password": password, "otp_token": token, **extra}
        return client.post("/admin/login/?next=/admin/", data)

    return _post
