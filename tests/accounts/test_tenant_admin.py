"""The tenant screens: platform admins only; add and limit changes go through the services."""

from __future__ import annotations

import json
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from intents.models import Intent, IntentStatus
from intents.services import intent_submit
from portal.accounts.models import Tenant
from portal.audit.models import AuditEvent
from tests.accounts.factories import staff_client

pytestmark = pytest.mark.django_db

BASE = "/admin/accounts/tenant/"
ADD = f"{BASE}add/"


def change_url(tenant: Tenant) -> str:
    return f"{BASE}{tenant.pk}/change/"


@pytest.fixture
def platform_admin(db) -> Client:
    return staff_client("pat", ["platform_admins"])


def limits_post(tenant: Tenant, **changes) -> dict[str, str]:
    """The change form as the browser posts it: the tenant's limits, with ``changes``."""
    data = {
        "rate_limit_per_minute": str(tenant.rate_limit_per_minute),
        "max_open_intents": str(tenant.max_open_intents),
        "allowed_targets": "\n".join(tenant.allowed_targets),
        "retry_overrides": json.dumps(tenant.retry_overrides),
    }
    if tenant.allow_all_targets:
        data["allow_all_targets"] = "on"
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def cell(content: str, column: str, row_text: str) -> str:
    """The text of ``column``'s cell in the changelist row that mentions ``row_text``."""
    for row in re.findall(r"<tr>.*?</tr>", content, re.S):
        if f">{row_text}<" in row:
            match = re.search(rf'class="field-{column}[^"]*">(.*?)</td>', row, re.S)
            assert match, f"no {column} column"
            return match.group(1).strip()
    raise AssertionError(f"no row for {row_text}")


@pytest.mark.parametrize("role", ["operators", "approvers", "auditors"])
def test_other_roles_are_refused_every_tenant_page(role, tenant):
    client = staff_client("someone", [role])
    for url in (BASE, ADD, change_url(tenant)):
        assert client.get(url).status_code == 403, url
    assert client.post(ADD, {"name": "sneaky"}).status_code == 403
    response = client.post(change_url(tenant), limits_post(tenant, rate_limit_per_minute="1"))
    assert response.status_code == 403
    assert not Tenant.objects.filter(name="sneaky").exists()
    tenant.refresh_from_db()
    assert tenant.rate_limit_per_minute != 1
    assert not AuditEvent.objects.filter(action__startswith="tenant.").exists()
    index = client.get("/admin/")
    assert index.status_code == 200
    assert BASE not in index.content.decode()


def test_platform_admin_sees_tenants_on_the_index_and_their_pages(platform_admin, tenant):
    assert BASE in platform_admin.get("/admin/").content.decode()
    for url in (BASE, ADD, change_url(tenant)):
        assert platform_admin.get(url).status_code == 200, url


def test_superuser_may_manage_tenants(tenant):
    client = staff_client("root", [], superuser=True)
    assert client.get(change_url(tenant)).status_code == 200


def test_nobody_deletes_a_tenant(platform_admin, tenant):
    assert platform_admin.get(f"{BASE}{tenant.pk}/delete/").status_code == 403
    assert platform_admin.post(f"{BASE}{tenant.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Tenant.objects.filter(pk=tenant.pk).exists()
    assert "delete_selected" not in platform_admin.get(BASE).content.decode()


def test_list_shows_limits_and_open_intents_without_a_query_per_tenant(
    platform_admin, tenant, other_tenant, targets
):
    tenant.allow_all_targets = False
    tenant.allowed_targets = ["sms.otp", "push.alert"]
    tenant.rate_limit_per_minute = 42
    tenant.retry_overrides = {"max_attempts": 3}
    tenant.save()
    for n in range(3):
        intent_submit(
            tenant=tenant,
            idempotency_key=f"k{n}",
            target_key="sms.otp",
            contract_version=None,
            payload={"to": "+15550100001", "text": "hi"},
        )
    # A finished intent is not open.
    Intent.objects.filter(idempotency_key="k0").update(status=IntentStatus.ACCEPTED)

    with CaptureQueriesContext(connection) as two_tenants:
        response = platform_admin.get(BASE)
    content = response.content.decode()
    assert cell(content, "open_intents", "acme") == "2"
    assert cell(content, "open_intents", "globex") == "0"
    assert cell(content, "rate_limit_per_minute", "acme") == "42"
    assert cell(content, "targets", "acme") == "sms.otp, push.alert"
    assert cell(content, "targets", "globex") == "all"
    assert cell(content, "retry_override_list", "acme") == "max_attempts=3"
    assert cell(content, "retry_override_list", "globex") == "-"

    for n in range(5):
        Tenant.objects.create(name=f"more-{n}")
    with CaptureQueriesContext(connection) as seven_tenants:
        response = platform_admin.get(BASE)
    assert cell(response.content.decode(), "open_intents", "more-4") == "0"
    assert len(seven_tenants) == len(two_tenants)


def test_open_intents_column_sorts(platform_admin, tenant, other_tenant, targets):
    intent_submit(
        tenant=other_tenant,
        idempotency_key="only",
        target_key="sms.otp",
        contract_version=None,
        payload={"to": "+15550100001", "text": "hi"},
    )
    # "o" is the 0-based list_display position of "open intents", after the actions'
    # checkbox column; "-" sorts descending.
    content = platform_admin.get(f"{BASE}?o=-5").content.decode()
    assert "sorted descending" in content
    assert content.index(">globex<") < content.index(">acme<")


def test_add_creates_the_tenant_through_the_service_and_audits_it(platform_admin):
    response = platform_admin.post(ADD, {"name": "  initech  "})
    tenant = Tenant.objects.get(name="initech")
    assert response.status_code == 302
    assert response["Location"] == change_url(tenant)
    event = AuditEvent.objects.get(action="tenant.created")
    assert event.actor_label == "pat"
    assert event.object_id == str(tenant.pk)
    assert event.data == {"name": "initech"}


def test_add_refuses_an_existing_name_and_a_blank_one(platform_admin, tenant):
    response = platform_admin.post(ADD, {"name": "acme"})
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    response = platform_admin.post(ADD, {"name": "   "})
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert Tenant.objects.count() == 1
    assert not AuditEvent.objects.filter(action="tenant.created").exists()


def test_change_form_shows_the_limits(platform_admin, tenant):
    tenant.allowed_targets = ["sms.otp", "sms.fast"]
    tenant.retry_overrides = {"max_attempts": 3}
    tenant.save()
    content = platform_admin.get(change_url(tenant)).content.decode()
    assert 'name="rate_limit_per_minute"' in content
    assert "sms.otp\nsms.fast</textarea>" in content
    assert "&quot;max_attempts&quot;: 3" in content
    # The name is shown, not editable; no delete link, no admin history (the audit is).
    assert 'name="name"' not in content
    assert "deletelink" not in content
    assert f"{BASE}{tenant.pk}/history/" not in content


def test_limit_edit_goes_through_the_service_and_is_audited(platform_admin, tenant, targets):
    before_rate = tenant.rate_limit_per_minute
    response = platform_admin.post(
        change_url(tenant),
        limits_post(
            tenant,
            rate_limit_per_minute="120",
            max_open_intents="50",
            allow_all_targets=None,
            allowed_targets="sms.otp, push.alert\nsms.otp",
            retry_overrides='{"max_attempts": 3}',
        ),
    )
    assert response.status_code == 302
    tenant.refresh_from_db()
    assert tenant.rate_limit_per_minute == 120
    assert tenant.max_open_intents == 50
    assert tenant.allow_all_targets is False
    assert tenant.allowed_targets == ["push.alert", "sms.otp"]
    assert tenant.retry_overrides == {"max_attempts": 3}

    event = AuditEvent.objects.get(action="tenant.limits_updated")
    assert event.actor_type == "user"
    assert event.actor_label == "pat"
    assert event.object_id == str(tenant.pk)
    assert event.data["before"]["rate_limit_per_minute"] == before_rate
    assert event.data["after"] == {
        "rate_limit_per_minute": 120,
        "max_open_intents": 50,
        "allow_all_targets": False,
        "allowed_targets": ["push.alert", "sms.otp"],
        "retry_overrides": {"max_attempts": 3},
    }


def test_saving_unchanged_limits_writes_no_audit_event(platform_admin, tenant):
    response = platform_admin.post(change_url(tenant), limits_post(tenant))
    assert response.status_code == 302
    assert not AuditEvent.objects.filter(action="tenant.limits_updated").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ('{"max_attempts": 99}', "retry_overrides.max_attempts must be within 1..20."),
        ('{"jitter": 1}', "retry_overrides may only set: max_attempts, max_delay_s (not jitter)."),
        ("[3]", "retry_overrides must be an object."),
    ],
)
def test_a_limit_the_service_refuses_shows_its_error_and_changes_nothing(
    platform_admin, tenant, overrides, message
):
    before = Tenant.objects.filter(pk=tenant.pk).values().get()
    response = platform_admin.post(
        change_url(tenant),
        limits_post(tenant, rate_limit_per_minute="7", retry_overrides=overrides),
    )
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors == {"retry_overrides": [message]}
    assert message in response.content.decode()
    assert Tenant.objects.filter(pk=tenant.pk).values().get() == before
    assert not AuditEvent.objects.filter(action="tenant.limits_updated").exists()


def test_malformed_limits_are_refused_by_the_form(platform_admin, tenant):
    before = Tenant.objects.filter(pk=tenant.pk).values().get()
    response = platform_admin.post(
        change_url(tenant),
        limits_post(tenant, rate_limit_per_minute="-1", retry_overrides="{not json"),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"rate_limit_per_minute", "retry_overrides"}
    assert Tenant.objects.filter(pk=tenant.pk).values().get() == before


def test_an_unknown_target_key_is_shown_on_the_targets_field(platform_admin, tenant):
    """The service names the field it refuses; the form does not guess from the text."""
    response = platform_admin.post(
        change_url(tenant), limits_post(tenant, allowed_targets="no.such.target")
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["allowed_targets"]
    assert errors["allowed_targets"][0].startswith("Unknown target key(s): no.such.target")
