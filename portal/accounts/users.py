"""Staff users: create, change, reset a password, set flags, grant roles.

The one place users and roles are written, used by the admin and by ``seed_demo`` alike;
each change is audited in its transaction under one action name per kind of change:
``user.created``, ``user.updated`` (username, email, names), ``user.flags_changed``
(active, staff, superuser), ``user.password_reset``, ``user.tenant_scope_changed``, ``role.granted`` /
``role.revoked``.

Roles are granted and revoked only here (``manage.py grant_role``, ``seed_demo``): the
admin shows them read-only, so nobody with portal access alone can make someone, or a
second account of their own, an approver of their own replay requests.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from portal.audit.services import Actor, audit_record
from portal.errors import InvalidRequest

from .models import StaffProfile
from .roles import ALL_ROLES

USER_FLAGS = ("is_active", "is_staff", "is_superuser")


def _audit(user: Any, action: str, actor: Actor, ip_address: str | None, **data: Any) -> None:
    audit_record(
        actor=actor,
        action=action,
        object_type="user",
        object_id=user.pk,
        data={"username": user.get_username(), **data},
        ip_address=ip_address,
    )


def user_save(
    *,
    user: Any,
    actor: Actor,
    changed: Iterable[str] = (),
    ip_address: str | None = None,
    reason: str = "",
) -> None:
    """Save ``user`` as the caller changed it in memory (a form, a command) and audit it.

    A user without a primary key is created (``user.created``); otherwise ``changed``
    names the fields the caller changed, each kind audited under its own action.
    """
    names = set(changed)
    with transaction.atomic():
        if user.pk is None:
            user.save()
            _audit(
                user,
                "user.created",
                actor,
                ip_address,
                email=user.email,
                staff=user.is_staff,
                superuser=user.is_superuser,
            )
            return
        columns = {field.name for field in user._meta.concrete_fields}
        written = sorted(names & columns)
        if not written:
            return
        user.save(update_fields=written)
        details = sorted(set(written) - {*USER_FLAGS, "password", "last_login"})
        if details:
            after = {name: getattr(user, name) for name in details}
            _audit(user, "user.updated", actor, ip_address, changed=details, after=after)
        flags = sorted(names & set(USER_FLAGS))
        if flags:
            after = {name: getattr(user, name) for name in flags}
            _audit(user, "user.flags_changed", actor, ip_address, after=after)
        if "password" in names:
            _audit(user, "user.password_reset", actor, ip_address, reason=reason)


def user_create(
    *,
    username: str,
    password: str,
    actor: Actor,
    email: str = "",
    is_superuser: bool = False,
    ip_address: str | None = None,
) -> Any:
    """A new active staff user (audited ``user.created``)."""
    user = get_user_model()(
        username=username, email=email, is_staff=True, is_superuser=is_superuser
    )
    user.set_password(password)
    user_save(user=user, actor=actor, ip_address=ip_address)
    return user


def user_set_flags(
    *, user: Any, actor: Actor, ip_address: str | None = None, **flags: bool
) -> list[str]:
    """Set any of ``USER_FLAGS``; returns the names that changed (audited together)."""
    unknown = sorted(set(flags) - set(USER_FLAGS))
    if unknown:
        raise InvalidRequest(f"Not a user flag: {', '.join(unknown)}.")
    changed = sorted(name for name, value in flags.items() if getattr(user, name) != value)
    for name in changed:
        setattr(user, name, flags[name])
    user_save(user=user, actor=actor, changed=changed, ip_address=ip_address)
    return changed


def user_set_password(
    *, user: Any, password: str, actor: Actor, reason: str, ip_address: str | None = None
) -> None:
    """Replace the password (audited ``user.password_reset`` with ``reason``, never the
    password)."""
    user.set_password(password)
    user_save(user=user, actor=actor, changed=["password"], ip_address=ip_address, reason=reason)


def role_grant(
    *,
    user: Any,
    role: str,
    actor: Actor,
    revoke: bool = False,
    ip_address: str | None = None,
) -> bool:
    """Add (or remove) ``role``, audited (``role.granted`` / ``role.revoked``) in the same
    transaction; True when something changed."""
    if role not in ALL_ROLES:
        raise InvalidRequest(f"Unknown role {role!r}. Known: {', '.join(ALL_ROLES)}.")
    if not user.is_staff and not revoke:
        raise InvalidRequest(f"{user.get_username()} is not a staff user.")
    with transaction.atomic():
        # get_or_create: the migration creates the groups, but a flushed test database may not.
        group, _ = Group.objects.get_or_create(name=role)
        holds = user.groups.filter(pk=group.pk).exists()
        if holds != revoke:
            return False
        if revoke:
            user.groups.remove(group)
        else:
            user.groups.add(group)
        user.__dict__.pop("_role_cache", None)  # roles.has_role's per-object cache
        _audit(user, "role.revoked" if revoke else "role.granted", actor, ip_address, role=role)
    return True


def user_grant_all_tenants(
    *, user: Any, actor: Actor, reason: str = "", ip_address: str | None = None
) -> bool:
    """Let a staff user see every tenant (a profile fails closed: none without it);
    audited ``user.tenant_scope_changed``. True when something changed."""
    with transaction.atomic():
        profile, created = StaffProfile.objects.select_for_update().get_or_create(
            user=user, defaults={"all_tenants": True}
        )
        if not created and profile.all_tenants:
            return False
        if not profile.all_tenants:
            profile.all_tenants = True
            profile.save(update_fields=["all_tenants"])
        _audit(
            user, "user.tenant_scope_changed", actor, ip_address, all_tenants=True, reason=reason
        )
    return True
