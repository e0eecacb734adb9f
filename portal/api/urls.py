"""Mounted at /api/ after every API version: the rest of /api/ is a problem+json 404."""

from __future__ import annotations

from django.urls import re_path

from .problems import api_not_found

urlpatterns = [re_path(r"^.*$", api_not_found, name="api-not-found")]
