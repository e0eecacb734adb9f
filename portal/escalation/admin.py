"""Escalation rules and episodes in the admin: read-only. Rules change only through
``escalations.toml`` and ``sync_targets``; episodes only through the evaluator."""

from __future__ import annotations

import json

from django.contrib import admin

from portal.accounts.admin_mixins import RecordAdmin
from portal.accounts.roles import APPROVERS, AUDITORS, OPERATORS, PLATFORM_ADMINS

from .models import Episode, EscalationRule

VIEW_ROLES = (OPERATORS, APPROVERS, AUDITORS, PLATFORM_ADMINS)


@admin.register(EscalationRule)
class EscalationRuleAdmin(RecordAdmin[EscalationRule]):
    view_roles = VIEW_ROLES
    public_id_fields = ()
    list_display = ("key", "kind", "destinations", "is_active", "updated_at")
    list_filter = ("is_active",)
    search_fields = ("key",)
    list_select_related = ("current_revision",)
    fields = (
        "key",
        "is_active",
        "kind",
        "spec_json",
        "checksum",
        "source_path",
        "revision_diff",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description="kind")
    def kind(self, obj: EscalationRule) -> str:
        return obj.current_revision.kind if obj.current_revision else ""

    @admin.display(description="destinations")
    def destinations(self, obj: EscalationRule) -> str:
        spec = obj.current_revision.spec if obj.current_revision else {}
        return ", ".join(d["connection"] for d in spec.get("destinations", []))

    @admin.display(description="spec")
    def spec_json(self, obj: EscalationRule) -> str:
        spec = obj.current_revision.spec if obj.current_revision else {}
        return json.dumps(spec, indent=2, sort_keys=True)

    @admin.display(description="checksum")
    def checksum(self, obj: EscalationRule) -> str:
        return obj.current_revision.checksum if obj.current_revision else ""

    @admin.display(description="source path")
    def source_path(self, obj: EscalationRule) -> str:
        return obj.current_revision.source_path if obj.current_revision else ""

    @admin.display(description="last change")
    def revision_diff(self, obj: EscalationRule) -> str:
        return obj.current_revision.diff if obj.current_revision else ""


@admin.register(Episode)
class EpisodeAdmin(RecordAdmin[Episode]):
    view_roles = VIEW_ROLES
    public_id_fields = ()
    list_display = ("dedup_key", "status", "kind", "severity", "summary", "opened_at")
    list_filter = ("status", "kind", "severity")
    search_fields = ("dedup_key", "subject")
    list_select_related = ("rule",)
    fields = (
        "dedup_key",
        "rule",
        "kind",
        "subject",
        "status",
        "severity",
        "summary",
        "details_json",
        "opened_at",
        "resolved_at",
        "notifications_text",
    )
    readonly_fields = fields

    @admin.display(description="details")
    def details_json(self, obj: Episode) -> str:
        return json.dumps(obj.details, indent=2, sort_keys=True)

    @admin.display(description="notifications")
    def notifications_text(self, obj: Episode) -> str:
        return "\n".join(
            f"{n.action} → {n.destination}: {n.status}, {n.attempts} attempt(s)"
            + (f", last error: {n.last_error}" if n.last_error else "")
            for n in obj.notifications.order_by("id")
        )
