"""manage.py revoke_api_key PREFIX: revokes through the service, one line of output."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command, execute_from_command_line
from django.test import Client

from portal.accounts.models import ALL_SCOPES, ApiKey
from portal.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def run(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("revoke_api_key", *args, stdout=out)
    return out.getvalue().splitlines()


@pytest.fixture
def created_key(tenant) -> tuple[ApiKey, str]:
    """A key made by create_api_key, with the prefix it printed."""
    out = io.StringIO()
    call_command("create_api_key", "--tenant", tenant.name, "--name", "ci", stdout=out)
    key = out.getvalue().splitlines()[-1]
    return ApiKey.objects.get(prefix=key.partition(".")[0]), key


def test_revokes_by_the_printed_prefix_and_audits(created_key, targets):
    api_key, key = created_key
    auth = {"Authorization": f"Bearer {key}"}
    assert Client().get("/api/v1/targets", headers=auth).status_code == 200

    lines = run(api_key.prefix)

    assert lines == [f"API key {api_key.prefix} (ci) of tenant acme revoked."]
    api_key.refresh_from_db()
    assert api_key.revoked
    event = AuditEvent.objects.get(action="api_key.revoked")
    assert (event.actor_type, event.actor_label) == ("system", "manage.py revoke_api_key")
    assert event.object_id == api_key.prefix
    assert Client().get("/api/v1/targets", headers=auth).status_code == 401


def test_a_whole_key_pasted_revokes_its_key_without_echoing_the_secret(created_key):
    api_key, key = created_key
    lines = run(key)
    assert len(lines) == 1 and "revoked" in lines[0]
    assert key.partition(".")[2] not in lines[0]
    api_key.refresh_from_db()
    assert api_key.revoked


def test_only_the_named_key_is_revoked(created_key, tenant):
    api_key, _ = created_key
    other, _ = ApiKey.objects.create_key(name="other", tenant=tenant, scopes=ALL_SCOPES)
    run(api_key.prefix)
    other.refresh_from_db()
    assert not other.revoked


def test_already_revoked_says_so_and_succeeds(created_key):
    api_key, _ = created_key
    run(api_key.prefix)
    lines = run(api_key.prefix)
    assert lines == [
        f"API key {api_key.prefix} (ci) of tenant acme was already revoked; nothing changed."
    ]
    assert AuditEvent.objects.filter(action="api_key.revoked").count() == 1


def test_already_revoked_exits_zero_from_the_command_line(created_key, capsys):
    api_key, _ = created_key
    run(api_key.prefix)
    execute_from_command_line(["manage.py", "revoke_api_key", api_key.prefix])  # no SystemExit
    assert "already revoked" in capsys.readouterr().out


@pytest.mark.parametrize("prefix", ["NoSuchPx", "", "  "])
def test_unknown_prefix_is_an_error(created_key, prefix):
    with pytest.raises(CommandError, match="No API key has the prefix"):
        run(prefix)
    assert not ApiKey.objects.filter(revoked=True).exists()
    assert not AuditEvent.objects.filter(action="api_key.revoked").exists()


def test_unknown_prefix_exits_non_zero_with_a_one_line_reason(created_key, capsys):
    with pytest.raises(SystemExit) as exit_info:
        execute_from_command_line(["manage.py", "revoke_api_key", "NoSuchPx"])
    assert exit_info.value.code not in (0, None)
    captured = capsys.readouterr()
    assert captured.out == ""
    # (Structured JSON log lines may share stderr; the reason is the one plain line.)
    plain = [line for line in captured.err.splitlines() if line and not line.startswith("{")]
    assert plain == ["CommandError: No API key has the prefix 'NoSuchPx'."]
