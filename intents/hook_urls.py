"""Provider callbacks, mounted at /hooks/ by portal/urls.py (no API key: each provider
signs its own requests)."""

from __future__ import annotations

from django.urls import path

from .hooks import receipts_hook

urlpatterns = [
    path("receipts/<str:connection>", receipts_hook, name="hook-receipts"),
]
