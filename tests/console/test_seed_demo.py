"""`manage.py seed_demo`: demo tenant, key and 2FA-enrolled staff users; idempotent."""

from __future__ import annotations

import base64
import io
import json
import stat
from typing import cast

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from intents.models import Target
from portal.accounts.models import ALL_SCOPES, ApiKey, Tenant
from portal.audit.models import AuditEvent

pytestmark = pytest.mark.django_db

USERNAMES = ["operator", "approver", "auditor", "admin"]


@pytest.fixture
def demo_settings(settings):
    settings.DEBUG = True
    return settings


@pytest.fixture
def creds_path(tmp_path):
    return tmp_path / "var" / "demo_credentials.json"


def run_seed(creds_path, *args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", "--output", str(creds_path), *args, stdout=out)
    return out.getvalue()


def user_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("  ")]


def code_from_secret(secret_base32: str, *, at: float | None = None) -> str:
    padded = secret_base32 + "=" * (-len(secret_base32) % 8)
    totp = TOTP(base64.b32decode(padded))
    if at is not None:
        totp.time = at
    return f"{totp.token():06d}"


def test_refuses_without_debug_unless_forced(settings, creds_path):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        run_seed(creds_path)
    assert not creds_path.exists()
    assert not Tenant.objects.filter(name="demo").exists()
    assert not get_user_model().objects.filter(username="operator").exists()

    run_seed(creds_path, "--force")
    assert Tenant.objects.filter(name="demo").exists()
    assert creds_path.exists()


def test_seeds_tenant_key_users_devices_and_targets(demo_settings, creds_path, client):
    output = run_seed(creds_path)

    data = json.loads(creds_path.read_text())
    assert stat.S_IMODE(creds_path.stat().st_mode) == 0o600
    assert data["tenant"] == "demo"
    assert [user["username"] for user in data["users"]] == USERNAMES
    assert {user["username"]: user["roles"] for user in data["users"]} == {
        "operator": ["operators"],
        "approver": ["approvers"],
        "auditor": ["auditors"],
        "admin": ["platform_admins"],
    }
    # Targets synced from conf/targets, tenant may use them all.
    assert set(Target.objects.filter(is_active=True).values_list("key", flat=True)) >= {
        "sms.otp",
        "push.alert",
    }
    tenant = Tenant.objects.get(name="demo")
    assert tenant.allow_all_targets
    # The key works against the API and carries every scope.
    # The library annotates its manager with AbstractAPIKey; it returns self.model, ApiKey.
    api_key = cast(ApiKey, ApiKey.objects.get_from_key(data["api_key"]))
    assert api_key.tenant == tenant
    assert sorted(api_key.scopes) == sorted(ALL_SCOPES)
    response = client.get("/api/v1/targets", HTTP_AUTHORIZATION=f"Bearer {data['api_key']}")
    assert response.status_code == 200, response.content
    assert "sms.otp" in response.content.decode()

    users = get_user_model().objects.in_bulk(USERNAMES, field_name="username")
    for entry in data["users"]:
        user = users[entry["username"]]
        assert user.is_staff and user.is_active
        assert user.check_password(entry["password"])
        assert list(user.groups.values_list("name", flat=True)) == entry["roles"]
        device = TOTPDevice.objects.get(user=user)
        assert device.confirmed
        # The secret in the file is the device's: its code verifies.
        assert device.verify_token(code_from_secret(entry["totp_secret_base32"]))
        assert entry["password"] in output and entry["totp_secret_base32"] in output
    assert users["admin"].is_superuser
    assert not any(users[name].is_superuser for name in ("operator", "approver", "auditor"))
    assert data["api_key"] in output

    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions.count("user.created") == 4
    assert actions.count("otp.device_confirmed") == 4
    assert actions.count("role.granted") == 4
    assert actions.count("tenant.created") == 1
    assert actions.count("api_key.created") == 1
    assert "target.created" in actions
    # No plain secret reaches the audit history.
    dumped = json.dumps(list(AuditEvent.objects.values_list("data", flat=True)))
    assert data["api_key"] not in dumped
    assert not any(entry["password"] in dumped for entry in data["users"])


def test_second_run_changes_nothing(demo_settings, creds_path):
    first = run_seed(creds_path)
    before = creds_path.read_text()
    events = AuditEvent.objects.count()
    keys = ApiKey.objects.count()
    devices = list(TOTPDevice.objects.order_by("pk").values_list("pk", "key"))
    passwords = dict(get_user_model().objects.values_list("username", "password"))

    second = run_seed(creds_path)

    assert "nothing changed" in second
    assert user_lines(second) == user_lines(first)
    assert creds_path.read_text() == before
    assert AuditEvent.objects.count() == events
    assert ApiKey.objects.count() == keys == 1
    assert list(TOTPDevice.objects.order_by("pk").values_list("pk", "key")) == devices
    assert dict(get_user_model().objects.values_list("username", "password")) == passwords


def test_lost_credentials_file_replaces_key_and_passwords_but_keeps_devices(
    demo_settings, creds_path
):
    run_seed(creds_path)
    first = json.loads(creds_path.read_text())
    creds_path.unlink()

    run_seed(creds_path)
    second = json.loads(creds_path.read_text())

    assert second["api_key"] != first["api_key"]
    assert ApiKey.objects.filter(revoked=False).count() == 1
    assert ApiKey.objects.get(revoked=False) == ApiKey.objects.get_from_key(second["api_key"])
    old_prefix = first["api_key"].partition(".")[0]
    assert ApiKey.objects.get(prefix=old_prefix).revoked
    assert AuditEvent.objects.filter(action="api_key.revoked").count() == 1
    for old, new in zip(first["users"], second["users"], strict=True):
        assert new["password"] != old["password"]
        assert new["totp_secret_base32"] == old["totp_secret_base32"]
        user = get_user_model().objects.get(username=new["username"])
        assert user.check_password(new["password"])
    assert AuditEvent.objects.filter(action="user.password_reset").count() == 4


def test_revoked_key_and_lost_role_are_restored(demo_settings, creds_path):
    run_seed(creds_path)
    first = json.loads(creds_path.read_text())
    ApiKey.objects.filter(prefix=first["api_key"].partition(".")[0]).update(revoked=True)
    operator = get_user_model().objects.get(username="operator")
    operator.groups.clear()
    TOTPDevice.objects.filter(user=operator).delete()

    output = run_seed(creds_path)
    second = json.loads(creds_path.read_text())

    assert second["api_key"] != first["api_key"]
    assert ApiKey.objects.is_valid(second["api_key"])
    assert list(operator.groups.values_list("name", flat=True)) == ["operators"]
    assert "operator roles operators granted" in output
    new_secret = second["users"][0]["totp_secret_base32"]
    assert new_secret != first["users"][0]["totp_secret_base32"]
    assert TOTPDevice.objects.get(user=operator, confirmed=True).verify_token(
        code_from_secret(new_secret)
    )
    # The other users' passwords were still right, so they were kept.
    assert second["users"][1:] == first["users"][1:]


def test_totp_code_prints_the_current_code(demo_settings, creds_path):
    run_seed(creds_path)
    secret = json.loads(creds_path.read_text())["users"][1]["totp_secret_base32"]
    out = io.StringIO()
    call_command("seed_demo", "--totp-code", "approver", stdout=out)
    code = out.getvalue().strip()
    assert len(code) == 6 and code.isdigit()
    device = TOTPDevice.objects.get(user__username="approver")
    assert device.verify_token(code)
    assert code == code_from_secret(secret, at=device.last_t * device.step + device.t0)


def test_totp_code_is_refused_without_debug_or_for_unknown_users(demo_settings, creds_path):
    run_seed(creds_path)
    with pytest.raises(CommandError, match="No user"):
        call_command("seed_demo", "--totp-code", "nobody", stdout=io.StringIO())
    demo_settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed_demo", "--totp-code", "approver", "--force", stdout=io.StringIO())


def test_seeded_user_logs_in_with_password_and_code(demo_settings, creds_path, client):
    run_seed(creds_path)
    operator = json.loads(creds_path.read_text())["users"][0]
    response = client.post(
        "/admin/login/?next=/admin/",
        {
            "username": operator["username"],
            "password": operator["password"],
            "otp_token": code_from_secret(operator["totp_secret_base32"]),
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
