"""API keys in the admin, for platform admins only.

A key is created through ``services.api_key_create`` (audited there) and shown once, in
the response that created it; keys are otherwise read-only and can only be revoked.
Nobody deletes a key (audit events point at it).
"""

from __future__ import annotations

from typing import Any

from django import forms
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

from portal.audit.services import Actor, ip_from_request
from portal.errors import DomainError

from .admin_mixins import (
    DetailPageAdmin,
    RoleRequiredAdminMixin,
    ServiceFormAdminMixin,
    add_service_error,
    holds_any_role,
)
from .models import ALL_SCOPES, ApiKey, ApiKeyScope
from .roles import PLATFORM_ADMINS
from .services import api_key_create, api_key_revoke

# The library's own "API keys" screen makes keys the API refuses (no tenant, no scopes)
# without an audit event: keys are made only through ApiKeyAdmin below, and the service.
if admin.site.is_registered(LibraryAPIKey):
    admin.site.unregister(LibraryAPIKey)


class ApiKeyCreateForm(forms.ModelForm[ApiKey]):
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
class ApiKeyAdmin(ServiceFormAdminMixin, RoleRequiredAdminMixin, DetailPageAdmin[ApiKey]):
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
