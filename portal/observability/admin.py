from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from .models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin[WorkerHeartbeat]):
    """Read-only: rows are written by the processes themselves."""

    list_display = ("worker_id", "kind", "seen_at")
    list_filter = ("kind",)
    search_fields = ("worker_id",)
    ordering = ("kind", "-seen_at")
    readonly_fields = ("worker_id", "kind", "seen_at", "info")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
