"""Read-only audit history for auditors and platform admins, with CSV / JSON Lines export.

Nobody adds, changes or deletes events here, superusers included. Every export, from
the list's links or its actions, first records an ``audit.exported`` event.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBadRequest, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.urls import path
from django.utils import timezone

from portal.accounts.admin_mixins import ReadOnlyAdminMixin, RoleRequiredAdminMixin
from portal.accounts.roles import AUDITORS, PLATFORM_ADMINS
from portal.admin_display import short_id

from .export import CONTENT_TYPES, FORMATS, iter_export
from .models import AuditEvent
from .services import Actor, audit_export_begin, ip_from_request


def export_response(
    request: HttpRequest, events: QuerySet[AuditEvent], fmt: str, filters: dict[str, Any]
) -> StreamingHttpResponse:
    """Record the export, then stream the events that precede that record."""
    marker = audit_export_begin(
        actor=Actor.user(request.user),
        fmt=fmt,
        filters=filters,
        ip_address=ip_from_request(request),
    )
    events = events.filter(sequence__lt=marker.sequence).order_by("sequence")
    response = StreamingHttpResponse(
        iter_export(events.iterator(chunk_size=2000), fmt), content_type=CONTENT_TYPES[fmt]
    )
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{fmt}"'
    response["Cache-Control"] = "no-store"
    return response


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, RoleRequiredAdminMixin, admin.ModelAdmin[AuditEvent]):
    view_roles = (AUDITORS, PLATFORM_ADMINS)
    change_list_template = "admin/audit/auditevent/change_list.html"
    list_display = (
        "sequence",
        "occurred_at",
        "action",
        "actor_type",
        "actor_label",
        "object_type",
        "short_object_id",
        "ip_address",
    )
    list_display_links = ("sequence",)
    list_filter = ("action", "actor_type", "actor_label", "occurred_at")
    date_hierarchy = "occurred_at"
    search_fields = ("=sequence", "action", "actor_label", "actor_id", "object_id", "request_id")
    search_help_text = "Sequence number, action, actor, object id or request id."
    ordering = ("-sequence",)
    list_per_page = 50
    show_full_result_count = False
    actions = ("export_selected_csv", "export_selected_jsonl")

    @admin.display(description="object id", ordering="object_id")
    def short_object_id(self, obj: AuditEvent) -> str:
        return short_id(obj.object_id) if len(obj.object_id) > 12 else obj.object_id

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in AuditEvent._meta.fields]

    def get_urls(self) -> list[Any]:
        export = path(
            "export/",
            self.admin_site.admin_view(self.export_view),
            name="audit_auditevent_export",
        )
        return [export, *super().get_urls()]

    def export_view(self, request: HttpRequest) -> HttpResponseBase:
        """The list as currently filtered and searched, in the requested format."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        params = request.GET.copy()
        fmt = params.pop("format", [""])[-1]
        if fmt not in FORMATS:
            return HttpResponseBadRequest(f"format must be one of: {', '.join(FORMATS)}")
        # The changelist reads its filters from request.GET; the stubs allow only the
        # immutable QueryDict the handler builds there, not this edited copy.
        request.GET = params  # type: ignore[assignment]
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest("unknown filter in the export request")
        filters = {key: values[-1] for key, values in params.lists()}
        return export_response(request, changelist.queryset, fmt, filters)

    @admin.action(description="Export selected events as CSV", permissions=["view"])
    def export_selected_csv(self, request: HttpRequest, queryset: QuerySet[AuditEvent]) -> Any:
        return export_response(request, queryset, "csv", {"selection": "admin action"})

    @admin.action(description="Export selected events as JSON Lines", permissions=["view"])
    def export_selected_jsonl(self, request: HttpRequest, queryset: QuerySet[AuditEvent]) -> Any:
        return export_response(request, queryset, "jsonl", {"selection": "admin action"})
