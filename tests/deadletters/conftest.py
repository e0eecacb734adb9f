"""Fixtures of the dead-letter tests: real dead letters made by the engine, staff users.

Intents are driven through the real dispatcher (``run_once``, inline) against the
scripted in-process gateway of the engine tests; the magic recipient decides the fate.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from intents.dispatch import run_once
from tests.accounts.factories import create_staff_user
from tests.engine.conftest import scripted, submit  # noqa: F401  (shared engine fixtures)

# The instant ``frozen_clock`` starts at; the wall clock (TOTP, audit) is frozen there too.
START = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)

REJECTED = "+15550100400"  # permanent rejection: failed at once
TRANSIENT = "+15550100503"  # 503 every time: exhausted after sms.fast's 3 attempts
FLAKY_5 = "+15550100205"  # 503 for the first 5 requests with one key, then accepted


@pytest.fixture
def traveller(frozen_clock):
    """The wall clock (``time.time``, ``timezone.now``) frozen at ``START``.

    TOTP codes follow the wall clock; ``.shift(s)`` moves it without moving the engine's
    clock (``frozen_clock.advance``).
    """
    with time_machine.travel(START, tick=False) as handle:
        yield handle


@pytest.fixture
def dead_lettered(frozen_clock, scripted, submit):  # noqa: F811
    """``dead_lettered(to=..., **submit_kwargs)``: an intent driven to a terminal failure."""

    def _make(to: str = REJECTED, **extra):
        intent = submit(to, **extra)
        for _ in range(10):
            run_once()
            intent.refresh_from_db()
            if intent.is_terminal:
                return intent
            frozen_clock.advance(1)
        raise AssertionError(f"intent {intent.public_id} is still {intent.status}")

    return _make


@pytest.fixture
def dead_letter(dead_lettered):
    """``dead_letter(to=..., **submit_kwargs)``: the open DeadLetter of a failed intent."""

    def _make(to: str = REJECTED, **extra):
        return dead_lettered(to, **extra).dead_letters.get()

    return _make


@pytest.fixture
def operator(db):
    """(user, device) in the operators role, all tenants."""
    return create_staff_user("olga", roles=["operators"])


@pytest.fixture
def approver(db):
    """(user, device) in the approvers role, all tenants."""
    return create_staff_user("abel", roles=["approvers"])


@pytest.fixture
def media_root(settings, tmp_path):
    """Evidence files go to a temporary MEDIA_ROOT."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def replay_requested(dead_letter, operator):
    """``replay_requested(*dead_letters)``: a pending request by the operator (olga)."""
    from deadletters.services import replay_request_create

    def _make(*dead_letters):
        chosen = dead_letters or (dead_letter(),)
        return replay_request_create(
            requested_by=operator[0],
            reason="gateway fixed",
            dead_letter_ids=[dl.public_id for dl in chosen],
        )

    return _make
