"""Admin for staff users, role groups and login lockouts, behind the role checks.

Users and groups are re-registered with role checks: platform admins manage users, but
roles, superuser status and raw permissions are read-only here for everyone (granted by
``manage.py grant_role`` / ``createsuperuser`` from the shell), and nobody deletes a user
(deactivate instead: audit events and evidence keep pointing at them). Saving a user goes
through ``users.user_save``, which audits it; this admin only names the acting user.
TOTP devices have no admin of their own: enrolment needs an invitation (``manage.py
invite_staff``) and a reset is an audited action on the user.

API keys live in ``admin_api_keys.py``; tenants in ``portal/console/admin.py``.
"""

from __future__ import annotations

from typing import Any

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import AbstractUser, Group
from django.db.models import Count, Exists, OuterRef, QuerySet
from django.http import HttpRequest
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.audit.services import Actor, audit_context, audit_record, ip_from_request
from portal.errors import DomainError

from .admin_mixins import RoleRequiredAdminMixin
from .models import StaffProfile
from .roles import PLATFORM_ADMINS
from .twofactor import two_factor_reset
from .users import user_save

User = get_user_model()

for model in (User, Group, TOTPDevice, StaticDevice, AccessAttempt):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


class StaffProfileInline(RoleRequiredAdminMixin, admin.StackedInline[StaffProfile, AbstractUser]):
    model = StaffProfile
    can_delete = False
    fields = ("all_tenants", "tenants")
    filter_horizontal = ("tenants",)
    verbose_name = "tenant scope"
    verbose_name_plural = "tenant scope (operators see only these tenants, or all when ticked)"
    change_roles = (PLATFORM_ADMINS,)


@admin.register(User)
class PortalUserAdmin(RoleRequiredAdminMixin, UserAdmin[AbstractUser]):
    change_roles = (PLATFORM_ADMINS,)
    inlines = (StaffProfileInline,)
    list_display = (
        "username",
        "email",
        "is_staff",
        "is_active",
        "roles",
        "has_authenticator",
        "backup_codes_left",
        "last_login",
    )
    list_filter = ("is_staff", "is_active", "groups")
    actions = ("reset_two_factor",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        confirmed_totp = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
        users: QuerySet[Any] = (
            super()
            .get_queryset(request)
            .annotate(
                _has_totp=Exists(confirmed_totp),
                _backup_codes=Count("backupcodedevice__codes", distinct=True),
            )
            .prefetch_related("groups")
        )
        return users

    @admin.display(description="roles")
    def roles(self, obj: Any) -> str:
        return ", ".join(sorted(group.name for group in obj.groups.all())) or "-"

    @admin.display(boolean=True, description="2FA", ordering="_has_totp")
    def has_authenticator(self, obj: Any) -> bool:
        has_totp: bool = obj._has_totp
        return has_totp

    @admin.display(description="backup codes", ordering="_backup_codes")
    def backup_codes_left(self, obj: Any) -> int:
        codes_left: int = obj._backup_codes
        return codes_left

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Four eyes: roles, superuser status and raw permissions never change here, for
        # anyone: only `manage.py grant_role` (shell access) grants a role, so nobody
        # with portal access alone makes an account an approver of their own requests.
        return [
            *super().get_readonly_fields(request, obj),
            "last_login",
            "date_joined",
            "groups",
            "is_superuser",
            "user_permissions",
        ]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # Saved and audited by the accounts service, one action per kind of change.
        user_save(
            user=obj,
            actor=Actor.user(request.user),
            changed=form.changed_data if change else (),
            ip_address=ip_from_request(request),
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        with audit_context(actor=Actor.user(request.user), ip_address=ip_from_request(request)):
            super().save_related(request, form, formsets, change)
        for formset in formsets:
            for inline_form in formset.forms:
                if "all_tenants" in inline_form.changed_data and inline_form.instance.pk:
                    audit_record(
                        actor=Actor.user(request.user),
                        action="user.tenant_scope_changed",
                        object_type="user",
                        object_id=form.instance.pk,
                        data={"all_tenants": inline_form.instance.all_tenants},
                        ip_address=ip_from_request(request),
                    )

    @admin.action(
        description="Reset two-factor authentication (they need a new invitation to enrol)",
        permissions=["change"],
    )
    def reset_two_factor(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        done = 0
        for user in queryset:
            try:
                two_factor_reset(actor=request.user, user=user, ip_address=ip_from_request(request))
            except DomainError as exc:
                self.message_user(request, exc.detail, messages.ERROR)
                return
            done += 1
        self.message_user(request, f"Two-factor authentication reset for {done} user(s).")


@admin.register(Group)
class PortalGroupAdmin(RoleRequiredAdminMixin, GroupAdmin):
    """Roles are fixed by a migration; their members are edited on the user page."""

    view_roles = (PLATFORM_ADMINS,)


# django-axes ships no type hints: to mypy its AccessAttemptAdmin is Any (the ignore).
@admin.register(AccessAttempt)
class PortalAccessAttemptAdmin(RoleRequiredAdminMixin, AccessAttemptAdmin):  # type: ignore[misc]
    """Failed-login counters (django-axes). Deleting a row lifts its lockout early."""

    view_roles = (PLATFORM_ADMINS,)
    delete_roles = (PLATFORM_ADMINS,)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self._audit_cleared(request, [obj])
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._audit_cleared(request, list(queryset))
        super().delete_queryset(request, queryset)

    @staticmethod
    def _audit_cleared(request: HttpRequest, attempts: list[Any]) -> None:
        for attempt in attempts:
            audit_record(
                actor=Actor.user(request.user),
                action="auth.lockout_cleared",
                object_type="user",
                data={"username": attempt.username, "attempt_ip": attempt.ip_address},
                ip_address=ip_from_request(request),
            )


# API keys: registered on import (portal/accounts/admin_api_keys.py). Tenants: a cross-app
# screen, in portal/console/admin.py.
from . import admin_api_keys  # noqa: E402, F401
