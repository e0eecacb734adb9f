"""Disabling and re-enabling a tenant: the service, the admin action and the command,
each audited; a disabled tenant's keys get the documented 401."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from portal.accounts.models import ALL_SCOPES, ApiKey, Tenant
from portal.accounts.services import tenant_set_active
from portal.audit.models import AuditEvent
from portal.audit.services import Actor
from tests.accounts.factories import staff_client

pytestmark = pytest.mark.django_db

LIST = "/admin/accounts/tenant/"


def api_status(key: str) -> tuple[int, dict]:
    response = Client().get("/api/v1/intents", HTTP_AUTHORIZATION=f"Bearer {key}")
    return response.status_code, response.json()


def test_allowed_targets_must_be_registered(tenant, targets):
    from portal.accounts.services import tenant_limits_update
    from portal.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match=r"Unknown target key\(s\): sms.otpx"):
        tenant_limits_update(
            tenant=tenant, actor=Actor.system("tests"), allowed_targets=["sms.otp", "sms.otpx"]
        )
    tenant_limits_update(tenant=tenant, actor=Actor.system("tests"), allowed_targets=["sms.otp"])
    assert Tenant.objects.get(pk=tenant.pk).allowed_targets == ["sms.otp"]


def test_a_disabled_tenant_is_refused_with_the_documented_error_and_enabled_again(tenant):
    _, key = ApiKey.objects.create_key(name="k", tenant=tenant, scopes=ALL_SCOPES)
    assert api_status(key)[0] == 200
    tenant, changed = tenant_set_active(
        tenant=tenant, active=False, actor=Actor.system("tests"), reason="unpaid invoice"
    )
    assert changed and not tenant.is_active
    status, body = api_status(key)
    assert status == 401
    assert body["code"] == "unauthenticated"
    assert body["detail"] == "The tenant of this API key is disabled."
    event = AuditEvent.objects.get(action="tenant.disabled")
    assert event.data == {"name": "acme", "reason": "unpaid invoice"}

    _, again = tenant_set_active(tenant=tenant, active=False, actor=Actor.system("tests"))
    assert again is False  # no second event for no change
    assert AuditEvent.objects.filter(action="tenant.disabled").count() == 1
    tenant_set_active(tenant=tenant, active=True, actor=Actor.system("tests"))
    assert api_status(key)[0] == 200
    assert AuditEvent.objects.filter(action="tenant.enabled").count() == 1


def test_the_admin_actions_disable_and_enable_the_selection(tenant, other_tenant):
    admin = staff_client("pat", ["platform_admins"])
    response = admin.post(
        LIST, {"action": "disable_tenants", "_selected_action": [tenant.pk]}, follow=True
    )
    assert "Acme disabled." in response.content.decode()
    assert Tenant.objects.get(pk=tenant.pk).is_active is False
    assert Tenant.objects.get(pk=other_tenant.pk).is_active is True
    event = AuditEvent.objects.get(action="tenant.disabled")
    assert (event.actor_type, event.actor_label) == ("user", "pat")
    response = admin.post(
        LIST,
        {"action": "enable_tenants", "_selected_action": [tenant.pk, other_tenant.pk]},
        follow=True,
    )
    assert "Acme enabled." in response.content.decode()
    assert Tenant.objects.filter(is_active=True).count() == 2


def test_other_roles_have_no_tenant_actions(tenant):
    operator = staff_client("olga", ["operators"])
    response = operator.post(LIST, {"action": "disable_tenants", "_selected_action": [tenant.pk]})
    assert response.status_code == 403
    assert Tenant.objects.get(pk=tenant.pk).is_active is True


def test_the_command_disables_enables_and_reports(tenant):
    out = io.StringIO()
    call_command("tenant_state", "acme", "--disable", "--reason", "abuse", stdout=out)
    call_command("tenant_state", "acme", "--disable", stdout=out)
    call_command("tenant_state", "acme", stdout=out)
    call_command("tenant_state", "acme", "--enable", stdout=out)
    assert out.getvalue().splitlines() == [
        "tenant acme is now disabled",
        "tenant acme was already disabled",
        "tenant acme is disabled",
        "tenant acme is now enabled",
    ]
    event = AuditEvent.objects.get(action="tenant.disabled")
    assert (event.actor_label, event.data["reason"]) == ("manage.py tenant_state", "abuse")
    with pytest.raises(CommandError, match="No tenant 'nope'"):
        call_command("tenant_state", "nope", "--enable")


def test_the_librarys_own_api_key_admin_is_not_offered():
    admin = staff_client("root", superuser=True)
    index = admin.get("/admin/").content.decode()
    assert "/admin/rest_framework_api_key/" not in index
    assert admin.get("/admin/rest_framework_api_key/apikey/").status_code == 404
    assert "/admin/accounts/apikey/" in index
