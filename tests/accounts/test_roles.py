"""Role checks, tenant scoping, and the audited user/role administration."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.contrib.auth.models import User as DjangoUser
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.accounts.models import BackupCodeDevice, StaffProfile
from portal.accounts.roles import (
    APPROVERS,
    AUDITORS,
    OPERATORS,
    PLATFORM_ADMINS,
    require_any_role,
    require_role,
    require_tenant_visible,
    restrict_to_visible_tenants,
    tenant_ids_visible_to,
)
from portal.accounts.twofactor import two_factor_reset
from portal.accounts.users import role_grant, user_create, user_set_flags, user_set_password
from portal.audit.models import AuditEvent
from portal.audit.services import Actor
from portal.errors import InvalidRequest, PermissionDenied
from tests.accounts.factories import create_staff_user, verified_login

pytestmark = pytest.mark.django_db


def test_require_role(operator):
    user, _ = operator
    require_role(user, OPERATORS)
    with pytest.raises(PermissionDenied, match="olga needs the approvers role"):
        require_role(user, APPROVERS)
    require_any_role(user, (APPROVERS, OPERATORS))
    with pytest.raises(ValueError, match="unknown role"):
        require_role(user, "wizards")


def test_inactive_user_holds_no_role(operator):
    user, _ = operator
    user.is_active = False
    with pytest.raises(PermissionDenied):
        require_role(user, OPERATORS)


def test_superuser_holds_every_role(db):
    root, _ = create_staff_user("root", superuser=True)
    for role in (OPERATORS, APPROVERS, AUDITORS, PLATFORM_ADMINS):
        require_role(root, role)


def test_tenant_scope(tenant, other_tenant):
    scoped, _ = create_staff_user("scoped", roles=[OPERATORS], tenants=[tenant])
    unscoped, _ = create_staff_user("unscoped", roles=[OPERATORS])
    admin_user, _ = create_staff_user("pat", roles=[PLATFORM_ADMINS], tenants=[tenant])
    assert tenant_ids_visible_to(scoped) == {tenant.pk}
    assert tenant_ids_visible_to(unscoped) is None
    assert tenant_ids_visible_to(admin_user) is None

    from portal.accounts.models import Tenant

    assert list(restrict_to_visible_tenants(Tenant.objects.all(), scoped, tenant_field="pk")) == [
        tenant
    ]
    require_tenant_visible(scoped, tenant.pk)
    with pytest.raises(PermissionDenied, match="outside your assigned tenants"):
        require_tenant_visible(scoped, other_tenant.pk)

    non_staff = DjangoUser.objects.create_user("client", password="x")
    assert tenant_ids_visible_to(non_staff) == set()


def test_role_grant_and_revoke_are_audited_with_the_actor(operator):
    user, _ = operator
    actor = Actor.system("manage.py grant_role")
    assert role_grant(user=user, role=APPROVERS, actor=actor)
    assert not role_grant(user=user, role=APPROVERS, actor=actor)  # held already: no event
    assert role_grant(user=user, role=APPROVERS, actor=actor, revoke=True)
    assert not role_grant(user=user, role=APPROVERS, actor=actor, revoke=True)
    assert role_grant(user=user, role=APPROVERS, actor=actor)
    events = list(
        AuditEvent.objects.filter(action__startswith="role.")
        .order_by("sequence")
        .values_list("action", "data__role", "actor_label")
    )
    assert events == [
        ("role.granted", OPERATORS, "tests"),  # from the factory
        ("role.granted", APPROVERS, "manage.py grant_role"),
        ("role.revoked", APPROVERS, "manage.py grant_role"),
        ("role.granted", APPROVERS, "manage.py grant_role"),
    ]
    assert set(user.groups.values_list("name", flat=True)) == {OPERATORS, APPROVERS}


def test_role_grant_refuses_unknown_roles_and_non_staff(operator):
    user, _ = operator
    with pytest.raises(InvalidRequest, match="Unknown role"):
        role_grant(user=user, role="root", actor=Actor.system())
    client = DjangoUser.objects.create_user("client", password="x")
    with pytest.raises(InvalidRequest, match="not a staff user"):
        role_grant(user=client, role=OPERATORS, actor=Actor.system())
    assert not AuditEvent.objects.filter(object_id=str(client.pk)).exists()


@pytest.fixture
def platform_admin(client):
    user, device = create_staff_user("pat", roles=[PLATFORM_ADMINS])
    verified_login(client, user, device)
    return user


def test_user_admin_is_for_platform_admins_only(client, operator):
    user, device = operator
    verified_login(client, user, device)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/auth/user/").status_code == 403
    assert client.get(f"/admin/auth/user/{user.pk}/change/").status_code == 403


def test_roles_never_change_in_the_admin_even_for_a_platform_admin(client, platform_admin):
    """Issue 11, finding 2: four eyes. A role posted to the user form is ignored."""
    target, _ = create_staff_user("olga", roles=[OPERATORS])
    page = client.get("/admin/auth/user/")
    assert page.status_code == 200
    assert "olga" in page.content.decode()
    form = client.get(f"/admin/auth/user/{target.pk}/change/").context["adminform"].form
    assert "groups" not in form.fields and "is_superuser" not in form.fields
    data = {
        key: value
        for key, value in form.initial.items()
        if key not in {"password", "last_login", "date_joined", "user_permissions", "groups"}
        and value is not None
    }
    data.update(
        {
            "groups": [
                Group.objects.get(name=OPERATORS).pk,
                Group.objects.get(name=APPROVERS).pk,
            ],
            "is_superuser": "on",
            "staff_profile-TOTAL_FORMS": "1",
            "staff_profile-INITIAL_FORMS": "0",
            "staff_profile-MIN_NUM_FORMS": "0",
            "staff_profile-MAX_NUM_FORMS": "1",
        }
    )
    data = {k: v for k, v in data.items() if not isinstance(v, bool) or v}
    response = client.post(f"/admin/auth/user/{target.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    target.refresh_from_db()
    assert set(target.groups.values_list("name", flat=True)) == {OPERATORS}
    assert not target.is_superuser
    assert not AuditEvent.objects.filter(action="role.granted", data__role=APPROVERS).exists()


def test_grant_role_is_the_one_way_to_a_role_and_is_audited(db):
    from django.core.management import call_command

    target, _ = create_staff_user("olga", roles=[OPERATORS])
    call_command("grant_role", "olga", APPROVERS)
    assert set(target.groups.values_list("name", flat=True)) == {OPERATORS, APPROVERS}
    granted = AuditEvent.objects.filter(action="role.granted", data__role=APPROVERS).get()
    assert granted.actor_label == "manage.py grant_role"
    assert granted.data["username"] == "olga"

    call_command("grant_role", "olga", APPROVERS, "--revoke")
    assert set(target.groups.values_list("name", flat=True)) == {OPERATORS}
    assert AuditEvent.objects.filter(action="role.revoked", data__role=APPROVERS).exists()


def test_reset_two_factor_action(client, platform_admin):
    target, _ = create_staff_user("olga", roles=[OPERATORS])
    BackupCodeDevice.objects.create(user=target, name="b").issue_codes()
    response = client.post(
        "/admin/auth/user/",
        {"action": "reset_two_factor", "_selected_action": [target.pk]},
    )
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=target).exists()
    assert not BackupCodeDevice.objects.filter(user=target).exists()
    event = AuditEvent.objects.get(action="otp.device_reset")
    assert event.actor_label == "pat"
    assert event.data == {"username": "olga", "devices_removed": 1}


def test_two_factor_reset_needs_platform_admin(operator):
    user, _ = operator
    victim, _ = create_staff_user("victim")
    with pytest.raises(PermissionDenied):
        two_factor_reset(actor=user, user=victim)
    assert TOTPDevice.objects.filter(user=victim).exists()


def test_nobody_deletes_users_in_the_admin(client, platform_admin):
    target, _ = create_staff_user("olga")
    assert client.get(f"/admin/auth/user/{target.pk}/delete/").status_code == 403


def test_tenant_scope_change_is_audited(operator, tenant):
    user, _ = operator
    profile = StaffProfile.objects.get(user=user)
    profile.tenants.add(tenant)
    event = AuditEvent.objects.get(action="user.tenant_scope_changed")
    assert event.data == {"change": "add", "tenant_ids": [tenant.pk], "now": [tenant.pk]}


def test_user_admin_changes_are_saved_and_audited_by_the_service(client, platform_admin):
    """The admin saves through ``users.user_save``: one action per kind of change, with
    the acting platform admin, and every changed column saved."""
    target, _ = create_staff_user("olga", roles=[OPERATORS])
    form = client.get(f"/admin/auth/user/{target.pk}/change/").context["adminform"].form
    data = {
        key: value
        for key, value in form.initial.items()
        if key not in {"password", "last_login", "date_joined", "user_permissions", "groups"}
        and value is not None
    }
    data.update(
        {
            "email": "olga@new.example",
            "first_name": "Olga",
            "is_active": "",  # deactivated
            "staff_profile-TOTAL_FORMS": "1",
            "staff_profile-INITIAL_FORMS": "1",
            "staff_profile-MIN_NUM_FORMS": "0",
            "staff_profile-MAX_NUM_FORMS": "1",
            "staff_profile-0-id": StaffProfile.objects.get(user=target).pk,
            "staff_profile-0-user": target.pk,
            "staff_profile-0-all_tenants": "on",
        }
    )
    data = {k: v for k, v in data.items() if v not in (False, "")}
    before = AuditEvent.objects.count()
    response = client.post(f"/admin/auth/user/{target.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    target.refresh_from_db()
    assert (target.email, target.first_name, target.is_active) == (
        "olga@new.example",
        "Olga",
        False,
    )
    events = {e.action: e for e in AuditEvent.objects.order_by("sequence")[before:]}
    assert set(events) == {"user.updated", "user.flags_changed"}
    assert events["user.updated"].data["changed"] == ["email", "first_name"]
    assert events["user.flags_changed"].data["after"] == {"is_active": False}
    assert {e.actor_label for e in events.values()} == {"pat"}


def test_seed_and_admin_share_the_user_service(db):
    actor = Actor.system("tests")
    user = user_create(username="sam", password="p" * 20, actor=actor)
    assert user_set_flags(user=user, actor=actor, is_active=False) == ["is_active"]
    assert user_set_flags(user=user, actor=actor, is_active=False) == []
    user_set_password(user=user, password="q" * 20, actor=actor, reason="lost")
    user.refresh_from_db()
    assert user.check_password("q" * 20) and not user.is_active
    events = list(
        AuditEvent.objects.filter(object_id=str(user.pk))
        .order_by("sequence")
        .values_list("action", "data")
    )
    assert [action for action, _ in events] == [
        "user.created",
        "user.flags_changed",
        "user.password_reset",
    ]
    assert events[2][1] == {"username": "sam", "reason": "lost"}  # never the password
    with pytest.raises(InvalidRequest, match="Not a user flag"):
        user_set_flags(user=user, actor=actor, is_admin=True)
