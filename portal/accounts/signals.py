"""Security events into the audit history: logins, failures, lockouts, tenant-scope changes.

Role changes are audited by ``users.role_grant``, the one way a role changes."""

from __future__ import annotations

import time
from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed
from django.dispatch import receiver

from portal.audit.services import Actor, audit_record, current_audit_context, ip_from_request

from .middleware import LOGIN_AT_SESSION_KEY
from .models import BackupCodeDevice, StaffProfile

User = get_user_model()
_USERNAME_MAX = 150


def _login_method(user: Any) -> str:
    explicit: str | None = getattr(user, "portal_login_method", None)
    if explicit:
        return explicit
    device = getattr(user, "otp_device", None)
    if device is None:
        return "password_only"
    if isinstance(device, BackupCodeDevice):
        return "backup_code"
    return "totp"


@receiver(user_logged_in, dispatch_uid="portal.accounts.login")
def record_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        request.session[LOGIN_AT_SESSION_KEY] = time.time()
    ip_address = ip_from_request(request)
    method = _login_method(user)
    audit_record(
        actor=Actor.user(user),
        action="auth.login",
        object_type="user",
        object_id=user.pk,
        data={"method": method},
        ip_address=ip_address,
    )
    if method == "backup_code":
        audit_record(
            actor=Actor.user(user),
            action="otp.backup_code_used",
            object_type="user",
            object_id=user.pk,
            data={"remaining": user.otp_device.codes.count()},
            ip_address=ip_address,
        )


@receiver(user_logged_out, dispatch_uid="portal.accounts.logout")
def record_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is None:
        return
    reason = getattr(request, "portal_logout_reason", "user")
    audit_record(
        actor=Actor.user(user),
        action="auth.logout",
        object_type="user",
        object_id=user.pk,
        data={"reason": reason},
        ip_address=ip_from_request(request),
    )


@receiver(user_login_failed, dispatch_uid="portal.accounts.login_failed")
def record_login_failure(
    sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any
) -> None:
    # Only the username is kept: ``credentials`` never reaches the audit history.
    username = str(credentials.get("username", ""))[:_USERNAME_MAX]
    audit_record(
        actor=Actor.system("anonymous"),
        action="auth.login_failed",
        object_type="user",
        data={"username": username},
        ip_address=ip_from_request(request),
    )


@receiver(user_locked_out, dispatch_uid="portal.accounts.locked_out")
def record_lockout(
    sender: Any, request: Any, username: Any, ip_address: Any, **kwargs: Any
) -> None:
    audit_record(
        actor=Actor.system("django-axes"),
        action="auth.locked_out",
        object_type="user",
        data={"username": str(username or "")[:_USERNAME_MAX]},
        ip_address=ip_address or ip_from_request(request),
    )


@receiver(m2m_changed, sender=StaffProfile.tenants.through, dispatch_uid="portal.accounts.scope")
def record_tenant_scope_change(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: set[int] | None, **kwargs: Any
) -> None:
    """``user.tenant_scope_changed`` when a staff user's tenant list changes."""
    if reverse or action not in {"post_add", "post_remove", "post_clear"}:
        return
    if action != "post_clear" and not pk_set:
        return
    context = current_audit_context()
    audit_record(
        actor=context.actor if context else Actor.system("system"),
        action="user.tenant_scope_changed",
        object_type="user",
        object_id=instance.user_id,
        data={
            "change": action.removeprefix("post_"),
            "tenant_ids": sorted(pk_set or ()),
            "now": sorted(instance.tenants.values_list("pk", flat=True)),
        },
        ip_address=context.ip_address if context else None,
    )
