"""Included by ``portal.urls`` before the admin's own patterns (``admin/operations/``
would otherwise be taken for an app label)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path("metrics", views.metrics_view, name="metrics"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path(
        "admin/operations/",
        admin.site.admin_view(views.operations_dashboard),
        name="operations-dashboard",
    ),
]
