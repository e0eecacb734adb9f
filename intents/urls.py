"""REST API v1, mounted at /api/v1/ by portal/urls.py."""

from __future__ import annotations

from django.urls import path, re_path

from portal.api.views import ApiDocsView, ApiSchemaView, method_router

from .api import (
    IntentAttemptsApi,
    IntentCancelApi,
    IntentCreateApi,
    IntentDetailApi,
    IntentListApi,
    IntentReceiptsApi,
    TargetListApi,
)
from .api_index import api_index, trailing_slash_hint
from .api_suppressions import SuppressionLiftApi, SuppressionListApi

urlpatterns = [
    path("intents", method_router(get=IntentListApi, post=IntentCreateApi), name="api-intents"),
    path("intents/<uuid:public_id>", IntentDetailApi.as_view(), name="api-intent-detail"),
    path(
        "intents/<uuid:public_id>/attempts",
        IntentAttemptsApi.as_view(),
        name="api-intent-attempts",
    ),
    path(
        "intents/<uuid:public_id>/receipts",
        IntentReceiptsApi.as_view(),
        name="api-intent-receipts",
    ),
    path("intents/<uuid:public_id>/cancel", IntentCancelApi.as_view(), name="api-intent-cancel"),
    path("targets", TargetListApi.as_view(), name="api-targets"),
    path("suppressions", SuppressionListApi.as_view(), name="api-suppressions"),
    path(
        "suppressions/<str:channel>/<str:recipient>",
        SuppressionLiftApi.as_view(),
        name="api-suppression-lift",
    ),
    path("schema", ApiSchemaView.as_view(), name="api-schema"),
    path("docs", ApiDocsView.as_view(), name="api-docs"),
    path("", api_index, name="api-index"),
    # Last: only what no endpoint above matched, ending in a slash.
    re_path(r"^(?P<path>.+)/$", trailing_slash_hint),
]
