"""Tenants and API keys in the admin, for platform admins only.

Every change goes through ``services.py`` (audited there), never through a model save: the
add and change forms validate input, then call the service, and show its refusal on the
form. A new API key is shown once, in the response that created it; keys are otherwise
read-only and can only be revoked. Nobody deletes a tenant or a key (intents and audit
events point at them).
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import quote, unquote
from django.contrib.admin.views.main import ChangeList
from django.contrib.admin.widgets import AdminSplitDateTime
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.cache import patch_cache_control
from rest_framework_api_key.models import APIKey as LibraryAPIKey

# The admin is the one place in portal.accounts that reads intents: the tenant list shows
# each tenant's open-intent count next to its cap.
from intents.selectors import open_intent_count_annotation
from portal.audit.services import Actor, ip_from_request
from portal.errors import DomainError

from .admin_mixins import DetailPageAdmin, RoleRequiredAdminMixin, holds_any_role
from .models import ALL_SCOPES, ApiKey, ApiKeyScope, Tenant
from .roles import PLATFORM_ADMINS
from .services import (
    TENANT_LIMIT_FIELDS,
    api_key_create,
    api_key_revoke,
    tenant_create,
    tenant_limits_update,
    tenant_set_active,
)

# The library's own "API keys" screen makes keys the API refuses (no tenant, no scopes)
# without an audit event: keys are made only through ApiKeyAdmin below, and the service.
if admin.site.is_registered(LibraryAPIKey):
    admin.site.unregister(LibraryAPIKey)


class ServiceFormAdminMixin:
    """Render an admin form whose valid data a service applies (instead of a model save)."""

    def render_service_form(
        self,
        request: HttpRequest,
        form: forms.ModelForm,
        obj: Any,
        *,
        fieldsets: list[tuple[str | None, dict[str, Any]]],
        readonly_fields: tuple[str, ...] = (),
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        model_admin: Any = self
        admin_form = helpers.AdminForm(
            form, fieldsets, {}, readonly_fields, model_admin=model_admin
        )
        opts = model_admin.opts
        context = {
            **model_admin.admin_site.each_context(request),
            "title": f"{'Add' if obj is None else 'Change'} {opts.verbose_name}",
            "subtitle": str(obj) if obj is not None else None,
            "adminform": admin_form,
            "object_id": obj.pk if obj is not None else None,
            "original": obj,
            "is_popup": False,
            "to_field": None,
            "media": model_admin.media + admin_form.media,
            "inline_admin_formsets": [],
            "errors": helpers.AdminErrorList(form, []),
            "preserved_filters": model_admin.get_preserved_filters(request),
            **(extra_context or {}),
        }
        return model_admin.render_change_form(
            request, context, add=obj is None, change=obj is not None, obj=obj
        )


def add_service_error(form: forms.BaseForm, exc: DomainError) -> None:
    """Show a service's refusal on the field it names (``DomainError.field``), if the form
    has that field; otherwise above the form."""
    form.add_error(exc.field if exc.field in form.fields else None, exc.detail)


class TargetKeysField(forms.CharField):
    """Target keys typed one per line (or separated by commas), as a list."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 40})

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(value) if isinstance(value, list | tuple) else value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        return [key for key in re.split(r"[\s,]+", super().to_python(value) or "") if key]


class TenantAddForm(forms.ModelForm):
    class Meta:
        model = Tenant
        fields = ("name",)


class TenantLimitsForm(forms.ModelForm):
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
class TenantAdmin(ServiceFormAdminMixin, RoleRequiredAdminMixin, admin.ModelAdmin):
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
        return super().get_queryset(request).annotate(_open_intents=open_intent_count_annotation())

    @admin.display(description="open intents", ordering="_open_intents")
    def open_intents(self, obj: Tenant) -> int:
        return obj._open_intents  # type: ignore[attr-defined]

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


class ApiKeyCreateForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiKeyScope.choices, widget=forms.CheckboxSelectMultiple, initial=ALL_SCOPES
    )
    expiry_date = forms.SplitDateTimeField(
        required=False,
        widget=AdminSplitDateTime,
        label="Expires",
        help_text="UTC. Leave empty for a key that does not expire.",
    )

    class Meta:
        model = ApiKey
        fields = ("tenant", "name", "scopes", "expiry_date")


class ApiKeyChangeList(ChangeList):
    def url_for_result(self, result: Any) -> str:
        return reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
            args=(quote(result.prefix),),
            current_app=self.model_admin.admin_site.name,
        )


@admin.register(ApiKey)
class ApiKeyAdmin(ServiceFormAdminMixin, RoleRequiredAdminMixin, DetailPageAdmin):
    """Keys are created (shown once) and revoked here; nothing else about them changes."""

    view_roles = (PLATFORM_ADMINS,)
    add_roles = (PLATFORM_ADMINS,)
    revoke_roles = (PLATFORM_ADMINS,)
    list_display = (
        "prefix",
        "name",
        "tenant",
        "scope_list",
        "created",
        "expiry_date",
        "revoked",
        "last_used_at",
    )
    list_filter = ("tenant", "revoked")
    list_select_related = ("tenant",)
    search_fields = ("=prefix", "name", "tenant__name")
    search_help_text = "A key prefix, or words of its name or tenant."
    ordering = ("-created",)
    list_per_page = 100
    fields = list_display
    readonly_fields = list_display
    actions = ("revoke_keys",)

    @admin.display(description="scopes")
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes)

    # A key's primary key is "<prefix>.<SHA-512 of the key>": in a URL it would reach
    # access logs and browser histories. Every admin URL names the key by its prefix.
    def get_object(self, request: HttpRequest, object_id: str, from_field: Any = None) -> Any:
        return self.get_queryset(request).filter(prefix=object_id).first()

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> Any:
        return ApiKeyChangeList

    def has_revoke_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return holds_any_role(request.user, self.revoke_roles)

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<path:object_id>/revoke/",
                self.admin_site.admin_view(self.revoke_view),
                name="accounts_apikey_revoke",
            ),
            *super().get_urls(),
        ]

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = ApiKeyCreateForm(request.POST)
            if form.is_valid():
                try:
                    api_key, key = api_key_create(
                        tenant=form.cleaned_data["tenant"],
                        name=form.cleaned_data["name"],
                        scopes=form.cleaned_data["scopes"],
                        expiry_date=form.cleaned_data["expiry_date"],
                        actor=Actor.user(request.user),
                        ip_address=ip_from_request(request),
                    )
                except DomainError as exc:
                    add_service_error(form, exc)
                else:
                    return self._key_created(request, api_key, key)
        else:
            form = ApiKeyCreateForm(initial=self.get_changeform_initial_data(request))
        return self.render_service_form(
            request,
            form,
            None,
            fieldsets=[(None, {"fields": ("tenant", "name", "scopes", "expiry_date")})],
            extra_context={"show_save_and_add_another": False, "show_save_and_continue": False},
        )

    def _key_created(self, request: HttpRequest, api_key: ApiKey, key: str) -> HttpResponse:
        # The key is in this response only: not in a message (messages live in the session
        # cookie), not in a redirect, never stored. Browsers and proxies must not keep it.
        response = TemplateResponse(
            request,
            "admin/accounts/apikey/created.html",
            {
                **self.admin_site.each_context(request),
                "title": "API key created",
                "opts": self.opts,
                "api_key": api_key,
                "key": key,
            },
        )
        patch_cache_control(response, no_store=True, private=True)
        return response

    def detail_context(self, request: HttpRequest, obj: Any) -> dict[str, Any]:
        return {"may_revoke": self.has_revoke_permission(request)}

    def revoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_revoke_permission(request):
            raise PermissionDenied
        api_key = self.get_object(request, unquote(object_id))
        if api_key is None:
            raise Http404("No such API key.")
        if request.method == "POST":
            self._revoke(request, [api_key])
            return HttpResponseRedirect(
                reverse("admin:accounts_apikey_change", args=[quote(api_key.prefix)])
            )
        return self._revoke_confirmation(request, [api_key], via_action=False)

    @admin.action(description="Revoke selected API keys", permissions=["revoke"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> HttpResponse | None:
        keys = list(queryset.select_related("tenant"))
        if request.POST.get("post") == "yes":
            self._revoke(request, keys)
            return None
        return self._revoke_confirmation(request, keys, via_action=True)

    def _revoke_confirmation(
        self, request: HttpRequest, keys: list[ApiKey], *, via_action: bool
    ) -> HttpResponse:
        return TemplateResponse(
            request,
            "admin/accounts/apikey/revoke_confirmation.html",
            {
                **self.admin_site.each_context(request),
                "title": "Revoke API key" + ("s" if len(keys) > 1 else ""),
                "opts": self.opts,
                "keys": keys,
                "via_action": via_action,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )

    def _revoke(self, request: HttpRequest, keys: list[ApiKey]) -> None:
        revoked, already = [], []
        for api_key in keys:
            if api_key.revoked:
                already.append(api_key.prefix)
                continue
            api_key_revoke(
                api_key=api_key, actor=Actor.user(request.user), ip_address=ip_from_request(request)
            )
            revoked.append(api_key.prefix)
        if revoked:
            self.message_user(request, f"Revoked API key(s): {', '.join(revoked)}.")
        if already:
            self.message_user(request, f"Already revoked: {', '.join(already)}.", messages.WARNING)
