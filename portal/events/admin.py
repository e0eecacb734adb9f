"""Client webhooks for operators: each tenant's endpoints and their recent deliveries.

Read-mostly: endpoints change through the API (the client's) and the engine (410, the
failing window); an operator may re-enable a disabled one once its owner fixed it
(audited). A delivery is an internal intent: a failed one is a dead letter, replayed
through the usual request and approval (its page links there).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import mark_safe

from portal.accounts.admin_mixins import RecordAdmin
from portal.accounts.roles import APPROVERS, AUDITORS, OPERATORS, PLATFORM_ADMINS, has_role
from portal.audit.services import Actor

from .models import EndpointStatus, WebhookEndpoint, WebhookEvent
from .selectors import recent_deliveries
from .services import webhook_endpoint_enable

VIEW_ROLES = (OPERATORS, APPROVERS, AUDITORS, PLATFORM_ADMINS)
RECENT_ON_ENDPOINT_PAGE = 20


def _delivery_links(event: WebhookEvent) -> str:
    intent = reverse("admin:intents_intent_change", args=[event.intent.pk])
    links = format_html('<a href="{}">delivery (intent)</a>', intent)
    if event.delivery_status == "failed":
        dead_letters = reverse("admin:deadletters_deadletter_changelist")
        query = urlencode({"q": str(event.public_id)})
        links += format_html(' · <a href="{}?{}">dead letter: replay</a>', dead_letters, query)
    return links


def _status_code(event: Any) -> str:
    """The latest attempt's HTTP status (annotated by the selector), or "-"."""
    return "-" if event.last_status_code is None else str(event.last_status_code)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(RecordAdmin[WebhookEndpoint]):
    view_roles = VIEW_ROLES
    tenant_field = "tenant"
    list_display = (
        "short_public_id",
        "tenant",
        "url",
        "status",
        "disabled_reason",
        "disabled_at",
        "failing_since",
        "last_success_at",
    )
    list_filter = ("status", "disabled_reason", ("tenant", admin.RelatedOnlyFieldListFilter))
    search_fields = ("url",)
    list_select_related = ("tenant",)
    ordering = ("-created_at", "-id")
    actions = ("enable_selected",)
    # Never the sealed secrets: not even their ciphertext is shown.
    fields = (
        "public_id",
        "tenant",
        "url",
        "description",
        "event_types",
        "status",
        "disabled_reason",
        "disabled_at",
        "failing_since",
        "last_success_at",
        "previous_secret_until",
        "created_at",
        "updated_at",
        "recent_deliveries",
    )
    readonly_fields = fields

    def has_enable_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, OPERATORS)

    @admin.action(description="Re-enable the selected endpoints", permissions=["enable"])
    def enable_selected(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        actor = Actor.user(request.user)
        enabled = 0
        for endpoint in queryset.filter(status=EndpointStatus.DISABLED):
            webhook_endpoint_enable(endpoint=endpoint, actor=actor)
            enabled += 1
        self.message_user(request, f"{enabled} endpoint(s) re-enabled.", messages.SUCCESS)

    @admin.display(description=f"latest {RECENT_ON_ENDPOINT_PAGE} deliveries")
    def recent_deliveries(self, obj: WebhookEndpoint) -> str:
        events = recent_deliveries(endpoint_ids=[obj.pk])[:RECENT_ON_ENDPOINT_PAGE]
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    e.created_at.isoformat(),
                    e.type,
                    e.delivery_status,
                    e.intent.attempts_count,
                    _status_code(e),
                    _delivery_links(e),
                )
                for e in events
            ),
        )
        head = (
            "<tr><th>created</th><th>type</th><th>status</th><th>attempts</th>"
            "<th>last HTTP status</th><th></th></tr>"
        )
        return format_html("<table>{}{}</table>", mark_safe(head), rows)  # noqa: S308 (constant)


@admin.register(WebhookEvent)
class WebhookEventAdmin(RecordAdmin[WebhookEvent]):
    view_roles = VIEW_ROLES
    tenant_field = "endpoint__tenant"
    list_display = (
        "short_public_id",
        "type",
        "endpoint_url",
        "tenant",
        "status",
        "attempts",
        "last_status_code",
        "created_at",
    )
    list_filter = ("type", "created_at")
    ordering = ("-created_at", "-id")
    list_per_page = 50
    show_full_result_count = False
    fields = (
        "public_id",
        "type",
        "endpoint_url",
        "tenant",
        "status",
        "attempts",
        "last_status_code",
        "created_at",
        "links",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookEvent]:
        visible = super().get_queryset(request).values("pk")
        return recent_deliveries().filter(pk__in=visible)

    @admin.display(description="endpoint")
    def endpoint_url(self, obj: WebhookEvent) -> str:
        return obj.endpoint.url

    @admin.display(description="tenant")
    def tenant(self, obj: WebhookEvent) -> str:
        return obj.endpoint.tenant.name

    @admin.display(description="status")
    def status(self, obj: WebhookEvent) -> str:
        return obj.delivery_status

    @admin.display(description="attempts")
    def attempts(self, obj: WebhookEvent) -> int:
        return obj.intent.attempts_count

    @admin.display(description="last HTTP status")
    def last_status_code(self, obj: Any) -> Any:
        return obj.last_status_code

    @admin.display(description="")
    def links(self, obj: WebhookEvent) -> str:
        return _delivery_links(obj)
