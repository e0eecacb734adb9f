"""Tenants in the admin, for platform admins only: a cross-app screen (the tenant list
shows each tenant's open-intent count, from ``intents``, next to its cap), so it lives in
the composition layer.

Every change goes through ``portal.accounts.services`` (audited there), never through a
model save: the add and change forms validate input, then call the service, and show its
refusal on the form. Nobody deletes a tenant (intents and audit events point at it).
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from intents.selectors import open_intent_count_annotation
from portal.accounts.admin_mixins import (
    RoleRequiredAdminMixin,
    ServiceFormAdminMixin,
    add_service_error,
)
from portal.accounts.models import Tenant
from portal.accounts.roles import PLATFORM_ADMINS
from portal.accounts.services import (
    TENANT_LIMIT_FIELDS,
    tenant_create,
    tenant_limits_update,
    tenant_set_active,
)
from portal.audit.services import Actor, ip_from_request
from portal.errors import DomainError


class TargetKeysField(forms.CharField):
    """Target keys typed one per line (or separated by commas), as a list."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 40})

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(value) if isinstance(value, list | tuple) else value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        return [key for key in re.split(r"[\s,]+", super().to_python(value) or "") if key]


class TenantAddForm(forms.ModelForm[Tenant]):
    class Meta:
        model = Tenant
        fields = ("name",)


class TenantLimitsForm(forms.ModelForm[Tenant]):
    """The limits a platform admin may edit; ``tenant_limits_update`` checks the values."""

    allowed_targets = TargetKeysField(
        required=False,
        help_text="Target keys (e.g. sms.otp), one per line; used when not all are allowed.",
    )
    retry_overrides = forms.JSONField(
        required=False,
        help_text="A JSON object within these bounds: "
        + ", ".join(
            f"{key} {low}..{high}" for key, (low, high) in settings.TENANT_RETRY_BOUNDS.items()
        )
        + '. For example {"max_attempts": 3}; {} for none.',
    )

    class Meta:
        model = Tenant
        fields = TENANT_LIMIT_FIELDS

    def clean_retry_overrides(self) -> Any:
        value = self.cleaned_data["retry_overrides"]
        return {} if value is None else value


@admin.register(Tenant)
class TenantAdmin(ServiceFormAdminMixin, RoleRequiredAdminMixin, admin.ModelAdmin[Tenant]):
    change_roles = (PLATFORM_ADMINS,)
    list_display = (
        "name",
        "is_active",
        "rate_limit_per_minute",
        "max_open_intents",
        "open_intents",
        "targets",
        "retry_override_list",
        "created_at",
    )
    list_filter = ("is_active", "allow_all_targets")
    search_fields = ("name",)
    ordering = ("name",)
    list_per_page = 50
    readonly_fields = ("name", "is_active", "open_intents", "created_at")
    actions = ("disable_tenants", "enable_tenants")

    @admin.action(
        description="Disable the selected tenants (their API keys get 401)", permissions=["change"]
    )
    def disable_tenants(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._set_active(request, queryset, active=False)

    @admin.action(description="Enable the selected tenants again", permissions=["change"])
    def enable_tenants(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> None:
        self._set_active(request, queryset, active=True)

    def _set_active(
        self, request: HttpRequest, queryset: QuerySet[Tenant], *, active: bool
    ) -> None:
        changed = [
            tenant.name
            for tenant in queryset
            if tenant_set_active(
                tenant=tenant,
                active=active,
                actor=Actor.user(request.user),
                reason="admin action",
                ip_address=ip_from_request(request),
            )[1]
        ]
        state = "enabled" if active else "disabled"
        if changed:
            self.message_user(request, f"{', '.join(changed)} {state}.", messages.SUCCESS)
        else:
            self.message_user(
                request,
                f"Nothing changed: the selected tenants were already {state}.",
                messages.WARNING,
            )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        tenants: QuerySet[Tenant] = (
            super().get_queryset(request).annotate(_open_intents=open_intent_count_annotation())
        )
        return tenants

    @admin.display(description="open intents", ordering="_open_intents")
    def open_intents(self, obj: Tenant) -> int:
        count: int = obj._open_intents  # type: ignore[attr-defined]
        return count

    @admin.display(description="targets")
    def targets(self, obj: Tenant) -> str:
        if obj.allow_all_targets:
            return "all"
        return ", ".join(obj.allowed_targets) or "none"

    @admin.display(description="retry overrides")
    def retry_override_list(self, obj: Tenant) -> str:
        return ", ".join(f"{key}={value}" for key, value in obj.retry_overrides.items()) or "-"

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if object_id is None:
            return self._add_tenant(request)
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        tenant = self.get_object(request, unquote(object_id))
        if tenant is None:
            raise Http404("No such tenant.")
        form = TenantLimitsForm(instance=tenant)
        if request.method == "POST":
            if not self.has_change_permission(request, tenant):
                raise PermissionDenied
            form = TenantLimitsForm(request.POST, instance=tenant)
            if form.is_valid():
                try:
                    tenant_limits_update(
                        tenant=tenant,
                        actor=Actor.user(request.user),
                        ip_address=ip_from_request(request),
                        **{name: form.cleaned_data[name] for name in TENANT_LIMIT_FIELDS},
                    )
                except DomainError as exc:
                    add_service_error(form, exc)
                else:
                    return self.response_change(request, tenant)
        return self.render_service_form(
            request,
            form,
            tenant,
            fieldsets=[
                (None, {"fields": ("name", "is_active", "open_intents", "created_at")}),
                ("Limits", {"fields": TENANT_LIMIT_FIELDS}),
            ],
            readonly_fields=self.readonly_fields,
            extra_context=extra_context,
        )

    def _add_tenant(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = TenantAddForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                tenant, created = tenant_create(
                    name=form.cleaned_data["name"],
                    actor=Actor.user(request.user),
                    ip_address=ip_from_request(request),
                )
            except DomainError as exc:
                add_service_error(form, exc)
            else:
                if created:
                    self.message_user(request, f"Tenant {tenant.name} added; now set its limits.")
                    return HttpResponseRedirect(
                        reverse("admin:accounts_tenant_change", args=[tenant.pk])
                    )
                form.add_error("name", "A tenant with this name already exists.")
        return self.render_service_form(
            request,
            form,
            None,
            fieldsets=[(None, {"fields": ("name",)})],
            extra_context={
                "show_save_and_add_another": False,
                "show_save_and_continue": False,
                "subtitle": "Its limits are set on the next page.",
            },
        )
