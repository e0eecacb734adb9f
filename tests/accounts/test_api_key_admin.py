"""The API key screens: platform admins create a key (shown once) and revoke keys; nothing else."""

from __future__ import annotations

import datetime as dt
import re
from typing import cast

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import quote
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.accounts.models import ALL_SCOPES, ApiKey, Tenant
from portal.audit.models import AuditEvent
from tests.accounts.factories import staff_client

pytestmark = pytest.mark.django_db

BASE = "/admin/accounts/apikey/"
ADD = f"{BASE}add/"
TARGETS = "/api/v1/targets"


def change_url(api_key: ApiKey) -> str:
    return f"{BASE}{quote(api_key.prefix)}/change/"


def revoke_url(api_key: ApiKey) -> str:
    return f"{BASE}{quote(api_key.prefix)}/revoke/"


def api_get(key: str, path: str = TARGETS):
    return Client().get(path, headers={"Authorization": f"Bearer {key}"})


def make_key(tenant: Tenant, name: str = "existing", scopes=None) -> tuple[ApiKey, str]:
    created, key = ApiKey.objects.create_key(
        name=name, tenant=tenant, scopes=ALL_SCOPES if scopes is None else scopes
    )
    # The library annotates its manager with AbstractAPIKey; it builds self.model, ApiKey.
    return cast(ApiKey, created), key


@pytest.fixture
def platform_admin(db) -> Client:
    return staff_client("pat", ["platform_admins"])


def shown_key(response) -> str:
    match = re.search(r'id="api-key" value="([^"]+)"', response.content.decode())
    assert match, "no key on the page"
    return match.group(1)


@pytest.mark.parametrize("role", ["operators", "approvers", "auditors"])
def test_other_roles_are_refused_every_key_page(role, tenant):
    api_key, _ = make_key(tenant)
    client = staff_client("someone", [role])
    for url in (BASE, ADD, change_url(api_key), revoke_url(api_key)):
        assert client.get(url).status_code == 403, url
    refused = [
        client.post(ADD, {"tenant": tenant.pk, "name": "sneaky", "scopes": ALL_SCOPES}),
        client.post(revoke_url(api_key)),
        client.post(
            BASE, {"action": "revoke_keys", "post": "yes", ACTION_CHECKBOX_NAME: [api_key.pk]}
        ),
    ]
    assert [response.status_code for response in refused] == [403, 403, 403]
    assert ApiKey.objects.count() == 1
    api_key.refresh_from_db()
    assert not api_key.revoked
    assert not AuditEvent.objects.filter(action__startswith="api_key.").exists()


def test_list_shows_keys_with_filters_and_no_query_per_key(platform_admin, tenant, other_tenant):
    first, _ = make_key(tenant, "billing")
    make_key(other_tenant, "globex main", scopes=["targets:read"])
    with CaptureQueriesContext(connection) as two_keys:
        response = platform_admin.get(BASE)
    content = response.content.decode()
    for text in (first.prefix, "billing", "acme", "globex main", "targets:read", "Last used at"):
        assert text in content
    assert "hashed" not in content.lower()

    for n in range(4):
        make_key(other_tenant, f"extra {n}")
    with CaptureQueriesContext(connection) as six_keys:
        platform_admin.get(BASE)
    assert len(six_keys) == len(two_keys)

    by_tenant = platform_admin.get(f"{BASE}?tenant__id__exact={tenant.pk}").content.decode()
    assert "billing" in by_tenant and "globex main" not in by_tenant
    platform_admin.post(revoke_url(first))
    revoked = platform_admin.get(f"{BASE}?revoked__exact=1").content.decode()
    assert "billing" in revoked and "globex main" not in revoked
    active = platform_admin.get(f"{BASE}?revoked__exact=0").content.decode()
    assert "billing" not in active and "globex main" in active


def test_add_form_offers_tenants_and_scope_checkboxes(platform_admin, tenant):
    content = platform_admin.get(f"{ADD}?tenant={tenant.pk}").content.decode()
    assert f'<option value="{tenant.pk}" selected>acme</option>' in content
    for scope in ALL_SCOPES:
        assert f'type="checkbox" name="scopes" value="{scope}"' in content
    assert 'name="expiry_date_0"' in content
    assert "_addanother" not in content and "_continue" not in content


def test_created_key_is_shown_once_and_works(platform_admin, tenant, targets):
    response = platform_admin.post(
        ADD, {"tenant": tenant.pk, "name": "orders", "scopes": ["targets:read", "intents:read"]}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = shown_key(response)
    api_key = ApiKey.objects.get()
    assert key.startswith(api_key.prefix + ".")
    assert (api_key.tenant, api_key.name) == (tenant, "orders")
    assert api_key.scopes == ["intents:read", "targets:read"]
    assert api_key.expiry_date is None
    assert key not in api_key.hashed_key and key != api_key.pk

    event = AuditEvent.objects.get(action="api_key.created")
    assert event.actor_label == "pat"
    assert event.object_id == api_key.prefix
    assert key not in str(event.data)

    # Never again: not in the session, its cookies, the messages, or any later page.
    secret = key.partition(".")[2]
    assert secret not in str(dict(platform_admin.session.items()))
    assert all(secret not in morsel.value for morsel in platform_admin.cookies.values())
    for url in (BASE, change_url(api_key), "/admin/"):
        assert secret not in platform_admin.get(url).content.decode(), url

    works = api_get(key)
    assert works.status_code == 200
    assert {target["key"] for target in works.json()} >= {"sms.otp"}
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None
    listed = platform_admin.get(BASE).content.decode()
    assert re.search(r'class="field-last_used_at[^"]*">[^<]*\d{4}', listed)


def test_key_with_an_expiry(platform_admin, tenant):
    expiry = (timezone.now() + dt.timedelta(days=30)).replace(second=0, microsecond=0)
    response = platform_admin.post(
        ADD,
        {
            "tenant": tenant.pk,
            "name": "temporary",
            "scopes": ["targets:read"],
            "expiry_date_0": expiry.strftime("%Y-%m-%d"),
            "expiry_date_1": expiry.strftime("%H:%M:%S"),
        },
    )
    assert response.status_code == 200
    assert ApiKey.objects.get().expiry_date == expiry
    assert expiry.strftime("%Y-%m-%d %H:%M") in response.content.decode()


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "no scopes"}, "scopes", "This field is required."),
        ({"name": "bad", "scopes": ["intents:delete"]}, "scopes", "Select a valid choice."),
        ({"name": "", "scopes": ["targets:read"]}, "name", "This field is required."),
        (
            {
                "name": "expired",
                "scopes": ["targets:read"],
                "expiry_date_0": "2020-01-01",
                "expiry_date_1": "00:00:00",
            },
            "expiry_date",
            "The expiry must be in the future.",
        ),
    ],
)
def test_bad_input_creates_no_key(platform_admin, tenant, data, field, message):
    response = platform_admin.post(ADD, {"tenant": tenant.pk, **data})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in errors[field][0]
    assert 'id="api-key"' not in response.content.decode()
    assert not ApiKey.objects.exists()
    assert not AuditEvent.objects.filter(action="api_key.created").exists()


def test_keys_are_read_only_and_never_deleted(platform_admin, tenant):
    api_key, _ = make_key(tenant, "fixed")
    page = platform_admin.get(change_url(api_key))
    content = page.content.decode()
    assert page.status_code == 200
    assert "View API key" in content
    assert 'id="id_name"' not in content and 'name="_save"' not in content
    response = platform_admin.post(change_url(api_key), {"name": "renamed", "revoked": "on"})
    assert response.status_code == 403
    assert platform_admin.get(f"{BASE}{quote(api_key.pk)}/delete/").status_code == 403
    assert "delete_selected" not in platform_admin.get(BASE).content.decode()
    api_key.refresh_from_db()
    assert (api_key.name, api_key.revoked) == ("fixed", False)


def test_revoke_button_confirms_then_revokes_and_the_key_stops_working(
    platform_admin, tenant, targets
):
    api_key, key = make_key(tenant)
    assert api_get(key).status_code == 200
    page = platform_admin.get(change_url(api_key)).content.decode()
    assert f'href="{revoke_url(api_key)}"' in page

    confirmation = platform_admin.get(revoke_url(api_key))
    assert confirmation.status_code == 200
    assert api_key.prefix in confirmation.content.decode()
    api_key.refresh_from_db()
    assert not api_key.revoked  # a GET only asks

    response = platform_admin.post(revoke_url(api_key))
    assert response.status_code == 302
    assert response["Location"] == change_url(api_key)
    api_key.refresh_from_db()
    assert api_key.revoked
    event = AuditEvent.objects.get(action="api_key.revoked")
    assert (event.actor_label, event.object_id) == ("pat", api_key.prefix)

    refused = api_get(key)
    assert refused.status_code == 401
    assert refused.json()["code"] == "unauthenticated"
    after = platform_admin.get(change_url(api_key)).content.decode()
    assert revoke_url(api_key) not in after
    assert "Revoked API key(s): " + api_key.prefix in after

    # Revoking again changes nothing and writes nothing.
    platform_admin.post(revoke_url(api_key))
    assert AuditEvent.objects.filter(action="api_key.revoked").count() == 1


def test_revoke_action_asks_then_revokes_the_selection(platform_admin, tenant, other_tenant):
    one, key_one = make_key(tenant, "one")
    two, _ = make_key(other_tenant, "two")
    kept, key_kept = make_key(tenant, "kept")
    selection = {"action": "revoke_keys", ACTION_CHECKBOX_NAME: [one.pk, two.pk]}

    confirmation = platform_admin.post(BASE, selection)
    assert confirmation.status_code == 200
    content = confirmation.content.decode()
    assert one.prefix in content and two.prefix in content and kept.prefix not in content
    assert 'name="post" value="yes"' in content
    assert not ApiKey.objects.filter(revoked=True).exists()

    response = platform_admin.post(BASE, {**selection, "post": "yes"})
    assert response.status_code == 302
    assert set(ApiKey.objects.filter(revoked=True).values_list("pk", flat=True)) == {
        one.pk,
        two.pk,
    }
    events = AuditEvent.objects.filter(action="api_key.revoked")
    assert sorted(events.values_list("object_id", flat=True)) == sorted([one.prefix, two.prefix])
    assert api_get(key_one).status_code == 401
    assert api_get(key_kept).status_code != 401


def test_the_service_refuses_an_expiry_in_the_past_and_names_the_field(tenant):
    """The rule lives in ``api_key_create``, so the command and the admin share it."""
    from portal.accounts.services import api_key_create
    from portal.audit.services import Actor
    from portal.errors import InvalidRequest

    with pytest.raises(InvalidRequest) as refused:
        api_key_create(
            tenant=tenant,
            name="late",
            scopes=["targets:read"],
            actor=Actor.system(),
            expiry_date=timezone.now() - dt.timedelta(seconds=1),
        )
    assert refused.value.field == "expiry_date"
    assert refused.value.detail == "The expiry must be in the future."
    assert not ApiKey.objects.exists()
