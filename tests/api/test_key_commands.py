"""create_tenant (idempotent) and create_api_key (the key alone on the last stdout line)."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command, execute_from_command_line

from portal.accounts.models import ALL_SCOPES, ApiKey, Tenant

from .conftest import ApiClient

pytestmark = pytest.mark.django_db


def _run(*args: str) -> list[str]:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().splitlines()


def test_create_tenant_creates_once_and_is_idempotent():
    first = _run("create_tenant", "acme")
    again = _run("create_tenant", "acme")
    assert Tenant.objects.filter(name="acme").count() == 1
    tenant = Tenant.objects.get(name="acme")
    assert first[-1].startswith(f"tenant acme (id {tenant.pk}) created")
    assert again[-1].startswith(f"tenant acme (id {tenant.pk}) exists")


def test_create_tenant_leaves_an_existing_tenant_as_it_is():
    Tenant.objects.create(name="acme", rate_limit_per_minute=7)
    _run("create_tenant", "acme")
    assert Tenant.objects.get(name="acme").rate_limit_per_minute == 7


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_create_tenant_refuses_a_bad_name(name):
    with pytest.raises(CommandError):
        call_command("create_tenant", name, stdout=io.StringIO())
    assert not Tenant.objects.exists()


def test_create_api_key_prints_a_working_key_alone_on_the_last_line(targets):
    _run("create_tenant", "acme")
    lines = _run("create_api_key", "--tenant", "acme")
    key = lines[-1]
    assert key == key.strip() and " " not in key and "." in key
    assert key not in "\n".join(lines[:-1])
    api_key = ApiKey.objects.get()
    assert api_key.tenant.name == "acme"
    assert api_key.scopes == ALL_SCOPES
    assert key.startswith(api_key.prefix + ".")
    assert key not in api_key.hashed_key  # only a digest is stored
    response = ApiClient(key).get("/api/v1/targets")
    assert response.status_code == 200
    assert len(json.loads(response.content)) == 4


def test_create_api_key_with_scopes_limits_the_key(targets):
    _run("create_tenant", "acme")
    key = _run("create_api_key", "--tenant", "acme", "--scopes", "intents:read, targets:read")[-1]
    assert ApiKey.objects.get().scopes == ["intents:read", "targets:read"]
    client = ApiClient(key)
    assert client.get("/api/v1/intents").status_code == 200
    refused = client.post(
        "/api/v1/intents", {"target": "sms.otp", "payload": {}}, idempotency_key="k"
    )
    assert refused.status_code == 403


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tenant", "nobody"], "Unknown tenant"),
        (["--tenant", "acme", "--scopes", "intents:write,admin"], "Unknown scope"),
        (["--tenant", "acme", "--scopes", ","], "at least one scope"),
    ],
)
def test_create_api_key_refuses_bad_tenant_or_scope(args, message):
    Tenant.objects.create(name="acme")
    with pytest.raises(CommandError, match=message):
        call_command("create_api_key", *args, stdout=io.StringIO())
    assert not ApiKey.objects.exists()


def test_create_api_key_failure_exits_non_zero_without_a_key(capsys):
    """From the command line, as a script runs it: an error exit and no key on stdout."""
    with pytest.raises(SystemExit) as exit_info:
        execute_from_command_line(["manage.py", "create_api_key", "--tenant", "nobody-at-all"])
    assert exit_info.value.code not in (0, None)
    captured = capsys.readouterr()
    assert captured.out.strip() == ""
    assert "nobody-at-all" in captured.err
    assert "Traceback" not in captured.err
