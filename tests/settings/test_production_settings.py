"""Production (and DEBUG-off development) settings refuse to start without their secrets
and name what is missing (CONTRACT.md, "Configuration")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = ("SECRET_KEY", "ALLOWED_HOSTS", "AUDIT_HMAC_KEY", "DATABASE_URL")


def load_settings(module: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in REQUIRED and k not in ("DEBUG", "METRICS_TOKEN", "METRICS_TOKEN_REQUIRED")
    }
    clean.update(env, DJANGO_SETTINGS_MODULE=module)
    return subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.DEBUG)"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


COMPLETE = {
    "SECRET_KEY": "x" * 50,
    "ALLOWED_HOSTS": "portal.example.com",
    "AUDIT_HMAC_KEY": "3f9c2a7d81e64b05c9a1f7e2d6b84c30a5e91d27f6c8b03e",
    "DATABASE_URL": "sqlite:///unused.sqlite3",
    "METRICS_TOKEN": "metrics-token-for-tests",
}


@pytest.mark.parametrize("missing", REQUIRED)
def test_production_names_each_missing_value(missing):
    env = {k: v for k, v in COMPLETE.items() if k != missing}
    result = load_settings("portal.settings.production", **env)
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured" in last_line and missing in last_line


def test_production_starts_with_everything_set_and_refuses_debug():
    assert load_settings("portal.settings.production", **COMPLETE).stdout.strip() == "False"
    result = load_settings("portal.settings.production", **COMPLETE, DEBUG="1")
    assert result.returncode != 0 and "DEBUG must be off" in result.stderr


def test_development_settings_invent_nothing_when_debug_is_off():
    result = load_settings("portal.settings.dev", DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY, ALLOWED_HOSTS, AUDIT_HMAC_KEY" in result.stderr
    assert load_settings("portal.settings.dev").stdout.strip() == "True"


def test_secrets_can_come_from_files(tmp_path):
    secret = tmp_path / "secret_key"
    secret.write_text("from-a-file-" + "y" * 40 + "\n", encoding="utf-8")
    env = {k: v for k, v in COMPLETE.items() if k != "SECRET_KEY"}
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.SECRET_KEY)"],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k not in REQUIRED},
            **env,
            "SECRET_KEY_FILE": str(secret),
            "DJANGO_SETTINGS_MODULE": "portal.settings.production",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout.strip() == "from-a-file-" + "y" * 40


# Issue 11, finding 9: weak secrets and an open /metrics are refused; probes are not
# redirected to HTTPS; backup codes carry 80 bits.


@pytest.mark.parametrize("weak", ["k" * 64, "check", "0123456789abcdef0123456"])
def test_production_refuses_a_weak_audit_hmac_key(weak):
    result = load_settings("portal.settings.production", **{**COMPLETE, "AUDIT_HMAC_KEY": weak})
    assert result.returncode != 0
    assert "AUDIT_HMAC_KEY is too weak" in result.stderr.strip().splitlines()[-1]


def test_production_requires_a_metrics_token_unless_explicitly_opted_out():
    env = {k: v for k, v in COMPLETE.items() if k != "METRICS_TOKEN"}
    result = load_settings("portal.settings.production", **env)
    assert result.returncode != 0 and "METRICS_TOKEN" in result.stderr.strip().splitlines()[-1]
    opted_out = load_settings("portal.settings.production", **env, METRICS_TOKEN_REQUIRED="false")
    assert opted_out.stdout.strip() == "False"


def test_health_and_metrics_paths_are_not_redirected_to_https():
    code = (
        "import django; django.setup(); from django.test import Client; "
        "c = Client(SERVER_NAME='portal.example.com'); "
        "print(*(c.get(p).status_code for p in ('/healthz', '/metrics', '/admin/login/')))"
    )
    clean = {k: v for k, v in os.environ.items() if k not in REQUIRED and k != "DEBUG"}
    clean.update(COMPLETE, DJANGO_SETTINGS_MODULE="portal.settings.production")
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    healthz, metrics, login = result.stdout.split()[-3:]
    assert healthz == "200"
    assert metrics == "401"  # the token is asked for, over plain HTTP, not a redirect
    assert login == "301"
