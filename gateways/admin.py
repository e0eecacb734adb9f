"""Connections in the admin: read-only, with their health (circuit, recent outcomes,
throttle waits). Connections change only through files and ``sync_targets``; a secret
is shown as its reference, never its value (the admin never resolves one)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest

from portal.accounts.admin_mixins import RecordAdmin
from portal.accounts.roles import APPROVERS, AUDITORS, OPERATORS, PLATFORM_ADMINS

from .models import Connection, ConnectionHealth

VIEW_ROLES = (OPERATORS, APPROVERS, AUDITORS, PLATFORM_ADMINS)


def _health_by_key(keys: list[str]) -> dict[str, ConnectionHealth]:
    return {h.connection_key: h for h in ConnectionHealth.objects.filter(connection_key__in=keys)}


@admin.register(Connection)
class ConnectionAdmin(RecordAdmin[Connection]):
    view_roles = VIEW_ROLES
    public_id_fields = ()
    list_display = (
        "key",
        "provider",
        "channel",
        "is_active",
        "circuit_state",
        "recent_calls",
        "last_outcome",
        "throttle_waits",
    )
    list_filter = ("is_active",)
    search_fields = ("key",)
    list_select_related = ("current_revision",)
    fields = (
        "key",
        "is_active",
        "provider",
        "channel",
        "spec_json",
        "checksum",
        "source_path",
        "revision_diff",
        "health",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Connection]:
        # The health columns come with the rows: one query for the page, not one per row.
        health = ConnectionHealth.objects.filter(connection_key=OuterRef("key"))
        connections: QuerySet[Connection] = (
            super()
            .get_queryset(request)
            .select_related("current_revision")
            .annotate(
                health_state=Subquery(health.values("state")[:1]),
                health_calls=Subquery(health.values("window_calls")[:1]),
                health_failures=Subquery(health.values("window_failures")[:1]),
                health_last_outcome=Subquery(health.values("last_outcome")[:1]),
                health_throttle_waits=Subquery(health.values("throttle_waits")[:1]),
            )
        )
        return connections

    @admin.display(description="provider")
    def provider(self, obj: Connection) -> str:
        return obj.current_revision.provider if obj.current_revision else ""

    @admin.display(description="channel")
    def channel(self, obj: Connection) -> str:
        return obj.current_revision.channel if obj.current_revision else ""

    @admin.display(description="circuit")
    def circuit_state(self, obj: Any) -> str:
        return obj.health_state or "closed"

    @admin.display(description="calls / failures (window)")
    def recent_calls(self, obj: Any) -> str:
        return f"{obj.health_calls or 0} / {obj.health_failures or 0}"

    @admin.display(description="last outcome")
    def last_outcome(self, obj: Any) -> str:
        return obj.health_last_outcome or ""

    @admin.display(description="throttle waits")
    def throttle_waits(self, obj: Any) -> int:
        return obj.health_throttle_waits or 0

    @admin.display(description="spec (secret references only)")
    def spec_json(self, obj: Connection) -> str:
        spec = obj.current_revision.spec if obj.current_revision else {}
        return json.dumps(spec, indent=2, sort_keys=True)

    @admin.display(description="checksum")
    def checksum(self, obj: Connection) -> str:
        return obj.current_revision.checksum if obj.current_revision else ""

    @admin.display(description="source path")
    def source_path(self, obj: Connection) -> str:
        return obj.current_revision.source_path if obj.current_revision else ""

    @admin.display(description="last change")
    def revision_diff(self, obj: Connection) -> str:
        return obj.current_revision.diff if obj.current_revision else ""

    @admin.display(description="health")
    def health(self, obj: Connection) -> str:
        health = _health_by_key([obj.key]).get(obj.key)
        return _health_text(health)


def _health_text(health: ConnectionHealth | None) -> str:
    if health is None:
        return "no calls yet (circuit closed)"
    parts = [
        f"circuit {health.state}",
        f"window: {health.window_calls} calls, {health.window_failures} failures "
        f"since {health.window_started_at:%Y-%m-%d %H:%M:%S}",
        f"total: {health.total_calls} calls, {health.total_failures} failures",
        f"throttle waits {health.throttle_waits}, circuit deferrals {health.circuit_deferrals}",
    ]
    if health.open_until:
        parts.append(f"open until {health.open_until:%Y-%m-%d %H:%M:%S}")
    if health.last_outcome:
        parts.append(f"last outcome {health.last_outcome} at {health.last_outcome_at}")
    if health.last_failure:
        parts.append(f"last failure: {health.last_failure}")
    return "; ".join(parts)


@admin.register(ConnectionHealth)
class ConnectionHealthAdmin(RecordAdmin[ConnectionHealth]):
    """Every connection that has carried traffic, the built-in simulators included."""

    view_roles = VIEW_ROLES
    public_id_fields = ()
    list_display = (
        "connection_key",
        "state",
        "window_calls",
        "window_failures",
        "total_calls",
        "total_failures",
        "last_outcome",
        "last_outcome_at",
        "throttle_waits",
        "circuit_deferrals",
        "open_until",
    )
    list_filter = ("state",)
    search_fields = ("connection_key",)
    fields = (*list_display, "window_started_at", "opened_at", "probe_until", "last_failure")
    readonly_fields = fields
