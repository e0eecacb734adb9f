"""Client webhooks under /api/v1/ (included by portal/urls.py before the intents' URLs)."""

from __future__ import annotations

from django.urls import path

from portal.api.views import method_router

from .api import (
    EndpointCreateApi,
    EndpointDeleteApi,
    EndpointDeliveriesApi,
    EndpointDetailApi,
    EndpointListApi,
    EndpointRotateSecretApi,
    EndpointTestApi,
    EndpointUpdateApi,
)

urlpatterns = [
    path(
        "webhook-endpoints",
        method_router(get=EndpointListApi, post=EndpointCreateApi),
        name="api-webhook-endpoints",
    ),
    path(
        "webhook-endpoints/<uuid:public_id>",
        method_router(get=EndpointDetailApi, patch=EndpointUpdateApi, delete=EndpointDeleteApi),
        name="api-webhook-endpoint",
    ),
    path(
        "webhook-endpoints/<uuid:public_id>/rotate-secret",
        EndpointRotateSecretApi.as_view(),
        name="api-webhook-endpoint-rotate-secret",
    ),
    path(
        "webhook-endpoints/<uuid:public_id>/test",
        EndpointTestApi.as_view(),
        name="api-webhook-endpoint-test",
    ),
    path(
        "webhook-endpoints/<uuid:public_id>/deliveries",
        EndpointDeliveriesApi.as_view(),
        name="api-webhook-endpoint-deliveries",
    ),
]
