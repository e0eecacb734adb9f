"""Finding 10: API responses are never cached; a refused login `next=` lands on the
admin; a forged approval by a non-approver is audited; a staff user's tenant scope fails
closed unless "all tenants" is granted explicitly."""

from __future__ import annotations

import pytest

from portal.accounts.models import StaffProfile
from portal.accounts.roles import tenant_ids_visible_to
from portal.audit.models import AuditEvent
from tests.accounts.factories import PASSWORD, create_staff_user, staff_client, totp_code

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/v1/intents", "/api/v1/targets", "/api/v1/nowhere"])
def test_api_responses_carry_no_store(api, path):
    assert api.get(path)["Cache-Control"] == "no-store"


def test_a_refused_next_lands_on_the_admin_not_a_404(client):
    _, device = create_staff_user("olga", roles=["operators"])
    response = client.post(
        "/admin/login/?next=https://evil.example/",
        {"username": "olga", "password": PASSWORD, "otp_token": totp_code(device)},
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_a_forged_approval_by_a_non_approver_is_refused_and_audited(db):
    client = staff_client("olga", roles=["operators"])
    response = client.post(
        "/admin/deadletters/replayrequest/00000000-0000-0000-0000-000000000001/decide/",
        {"decision": "approve", "otp_token": "123456"},
    )
    assert response.status_code == 403
    event = AuditEvent.objects.get(action="auth.permission_denied")
    assert event.actor_label == "olga"
    assert event.data["needs"] == ["approvers"]
    assert event.data["method"] == "POST"


def test_a_staff_user_without_tenants_sees_none(tenant):
    user, _ = create_staff_user("olga", roles=["operators"], tenants=[tenant])
    profile = StaffProfile.objects.get(user=user)
    profile.tenants.clear()
    user = type(user).objects.get(pk=user.pk)
    assert tenant_ids_visible_to(user) == set()

    profile.all_tenants = True
    profile.save(update_fields=["all_tenants"])
    assert tenant_ids_visible_to(user) is None


def test_a_staff_user_without_a_profile_sees_none(db):
    user, _ = create_staff_user("olga", roles=["operators"])
    StaffProfile.objects.filter(user=user).delete()
    assert tenant_ids_visible_to(user) == set()


def test_api_key_admin_urls_name_the_prefix_never_the_stored_hash(tenant):
    from portal.accounts.models import ApiKey
    from tests.api.conftest import make_key

    make_key(tenant)
    api_key = ApiKey.objects.get()
    client = staff_client("pat", roles=["platform_admins"])
    stored_hash = api_key.pk.rsplit("_", 1)[-1]  # the pk is "<prefix>.sha512_..._<hex>"
    assert len(stored_hash) > 40

    import re

    listing = client.get("/admin/accounts/apikey/").content.decode()
    links = re.findall(r'href="([^"]*)"', listing)
    assert not [link for link in links if stored_hash in link]
    assert f"/admin/accounts/apikey/{api_key.prefix}/change/" in listing
    page = client.get(f"/admin/accounts/apikey/{api_key.prefix}/change/")
    assert page.status_code == 200
    links = re.findall(r'href="([^"]*)"', page.content.decode())
    assert not [link for link in links if stored_hash in link]
    assert client.get(f"/admin/accounts/apikey/{api_key.pk}/change/").status_code == 302
    revoked = client.post(f"/admin/accounts/apikey/{api_key.prefix}/revoke/")
    assert revoked["Location"] == f"/admin/accounts/apikey/{api_key.prefix}/change/"
