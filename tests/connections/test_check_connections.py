"""``manage.py check_connections``: secrets resolved, providers probed, exit 1 on a failure."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from .conftest import scripted_connection

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("check_connections", *args, stdout=out)
    return out.getvalue()


def test_every_connection_gets_one_line_and_a_failure_exits_1(
    folders, scripted_provider, simulator_settings, monkeypatch
) -> None:
    monkeypatch.setenv("PORTAL_TEST_TOKEN", "tok-value-1234")
    folders.connection(
        "up", scripted_connection("up", extra="") + '[secrets]\ntoken = "env:PORTAL_TEST_TOKEN"\n'
    )
    folders.connection("down", scripted_connection("down", "down"))
    folders.sync()
    out = io.StringIO()
    with pytest.raises(CommandError, match=r"1 of 6 failed: down"):
        call_command("check_connections", stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 6  # the two files and the four built-in simulators
    assert "FAIL down (scripted, sms): mode down" in lines
    assert "ok   up (scripted, sms): mode up" in lines
    assert any(line.startswith("ok   simulator-email (simulator, email)") for line in lines)
    assert "tok-value-1234" not in out.getvalue()


def test_key_checks_one_and_an_unset_secret_fails_naming_its_reference(
    folders, scripted_provider
) -> None:
    folders.connection(
        "up", scripted_connection("up") + '[secrets]\ntoken = "env:PORTAL_TEST_UNSET_TOKEN"\n'
    )
    folders.sync()
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of 1 failed: up"):
        call_command("check_connections", "--key", "up", stdout=out)
    assert "env:PORTAL_TEST_UNSET_TOKEN: the variable is not set" in out.getvalue()


def test_an_unknown_key_is_refused(db) -> None:
    with pytest.raises(CommandError, match="no active connection 'nope'"):
        run("--key", "nope")
