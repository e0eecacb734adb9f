"""REST API v1: a tenant's webhook endpoints (CONTRACT.md v1.1, "Client webhooks").

One thin view per operation: the serializers check shapes, ``portal.events.services``
decides, every refusal leaves as problem+json.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from portal.accounts.models import ApiKeyScope
from portal.api.pagination import MAX_LIMIT, paginate_newest_first
from portal.api.schema import REQUEST_ID_HEADER, problem_responses
from portal.api.views import ApiView
from portal.audit.services import Actor
from portal.errors import InvalidRequest

from .models import WebhookEndpoint
from .selectors import deliveries_for_endpoint, endpoint_get_for_tenant, endpoints_for_tenant
from .serializers import (
    DeliveryOutputSerializer,
    DeliveryPageSerializer,
    EndpointCreateInputSerializer,
    EndpointOutputSerializer,
    EndpointPageSerializer,
    EndpointUpdateInputSerializer,
    EndpointWithSecretSerializer,
    PageParamsSerializer,
    SecretSerializer,
)
from .services import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_send_test,
    webhook_endpoint_update,
)

TAGS = ["webhook endpoints"]
ENDPOINT_ID_PATH = OpenApiParameter(
    "public_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The endpoint's id."
)
PAGE_PARAMETERS = [
    OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
    OpenApiParameter("cursor", {"type": "string", "minLength": 1}),
]


def _tenant(request: Request) -> Any:
    # Set by ApiKeyAuthentication: every view here requires a key.
    return request.tenant  # type: ignore[attr-defined]


def _actor(request: Request) -> Actor:
    return Actor.api_key(request.auth)


def _endpoint(request: Request, public_id: object) -> WebhookEndpoint:
    return endpoint_get_for_tenant(tenant=_tenant(request), public_id=public_id)


def _page_params(request: Request) -> dict[str, Any]:
    params = PageParamsSerializer(data=request.query_params)
    if not params.is_valid():
        raise InvalidRequest(
            "Invalid query parameters; see errors.",
            errors=[
                {"parameter": name, "message": str(message)}
                for name, messages in params.errors.items()
                for message in messages
            ],
        )
    return dict(params.validated_data)


def _valid(serializer_class: type, request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class EndpointCreateApi(ApiView):
    required_scope = ApiKeyScope.WEBHOOKS_WRITE

    @extend_schema(
        operation_id="webhook_endpoints_create",
        summary="Create a webhook endpoint; its signing secret is shown only in this answer",
        tags=TAGS,
        request=EndpointCreateInputSerializer,
        parameters=[REQUEST_ID_HEADER],
        responses={
            201: EndpointWithSecretSerializer,
            **problem_responses("invalid_request", "scope_missing"),
        },
    )
    def post(self, request: Request) -> Response:
        data = _valid(EndpointCreateInputSerializer, request)
        endpoint, secret = webhook_endpoint_create(
            tenant=_tenant(request),
            url=data["url"],
            event_types=data.get("event_types"),
            description=data.get("description", ""),
            actor=_actor(request),
        )
        body = {**EndpointOutputSerializer(endpoint).data, "secret": secret}
        location = reverse("api-webhook-endpoint", kwargs={"public_id": endpoint.public_id})
        return Response(
            body, status=201, headers={"Location": request.build_absolute_uri(location)}
        )


class EndpointListApi(ApiView):
    required_scope = ApiKeyScope.WEBHOOKS_READ

    @extend_schema(
        operation_id="webhook_endpoints_list",
        summary="List webhook endpoints, newest first",
        tags=TAGS,
        parameters=[*PAGE_PARAMETERS, REQUEST_ID_HEADER],
        responses={
            200: EndpointPageSerializer,
            **problem_responses("invalid_request", "scope_missing"),
        },
    )
    def get(self, request: Request) -> Response:
        params = _page_params(request)
        page = paginate_newest_first(
            endpoints_for_tenant(tenant=_tenant(request)),
            request=request,
            limit=params["limit"],
            cursor=params.get("cursor"),
        )
        return Response(
            {
                "results": EndpointOutputSerializer(page.results, many=True).data,
                "next": page.next_url,
            }
        )


class EndpointDetailApi(ApiView):
    required_scope = ApiKeyScope.WEBHOOKS_READ

    @extend_schema(
        operation_id="webhook_endpoints_retrieve",
        summary="Get one webhook endpoint",
        tags=TAGS,
        parameters=[ENDPOINT_ID_PATH, REQUEST_ID_HEADER],
        responses={
            200: EndpointOutputSerializer,
            **problem_responses("scope_missing", "not_found"),
        },
    )
    def get(self, request: Request, public_id: object) -> Response:
        return Response(EndpointOutputSerializer(_endpoint(request, public_id)).data)


class EndpointUpdateApi(ApiView):
    required_scope = ApiKeyScope.WEBHOOKS_WRITE
    http_method_names = ["patch"]

    @extend_schema(
        operation_id="webhook_endpoints_update",
        summary="Change an endpoint's url, event types, description or status",
        tags=TAGS,
        request=EndpointUpdateInputSerializer,
        parameters=[ENDPOINT_ID_PATH, REQUEST_ID_HEADER],
        responses={
            200: EndpointOutputSerializer,
            **problem_responses("invalid_request", "scope_missing", "not_found"),
        },
    )
    def patch(self, request: Request, public_id: object) -> Response:
        endpoint = _endpoint(request, public_id)
        changes = _valid(EndpointUpdateInputSerializer, request)
        endpoint = webhook_endpoint_update(
            endpoint=endpoint, changes=changes, actor=_actor(request)
        )
        return Response(EndpointOutputSerializer(endpoint).data)


class EndpointDeleteApi(ApiView):
    required_scope = ApiKeyScope.WEBHOOKS_WRITE
    http_method_names = ["delete"]

    @extend_schema(
        operation_id="webhook_endpoints_destroy",
        summary="Delete an endpoint: no more events are sent to it",
        tags=TAGS,
        request=None,
        parameters=[ENDPOINT_ID_PATH, REQUEST_ID_HEADER],
        responses={
            204: OpenApiResponse(description="Deleted."),
            **problem_responses("scope_missing", "not_found"),
        },
    )
    def delete(self, request: Request, public_id: object) -> Response:
        webhook_endpoint_delete(endpoint=_endpoint(request, public_id), actor=_actor(request))
        return Response(status=204)


class EndpointRotateSecretApi(ApiView):
    required_scope = ApiKeyScope.WEBHOOKS_WRITE

    @extend_schema(
        operation_id="webhook_endpoints_rotate_secret",
        summary="A new signing secret; the old one keeps signing beside it for 24 hours",
        tags=TAGS,
        request=None,
        parameters=[ENDPOINT_ID_PATH, REQUEST_ID_HEADER],
        responses={200: SecretSerializer, **problem_responses("scope_missing", "not_found")},
    )
    def post(self, request: Request, public_id: object) -> Response:
        secret = webhook_endpoint_rotate_secret(
            endpoint=_endpoint(request, public_id), actor=_actor(request)
        )
        return Response({"secret": secret})


class EndpointTestApi(ApiView):
    required_scope = ApiKeyScope.WEBHOOKS_WRITE

    @extend_schema(
        operation_id="webhook_endpoints_test",
        summary="Send a webhook.test event to the endpoint",
        tags=TAGS,
        request=None,
        parameters=[ENDPOINT_ID_PATH, REQUEST_ID_HEADER],
        responses={
            202: DeliveryOutputSerializer,
            **problem_responses("scope_missing", "not_found"),
        },
    )
    def post(self, request: Request, public_id: object) -> Response:
        endpoint = _endpoint(request, public_id)
        event = webhook_endpoint_send_test(endpoint=endpoint, actor=_actor(request))
        # By public id: a bulk insert leaves the primary key unset on SQL Server.
        shown = deliveries_for_endpoint(endpoint=endpoint).get(public_id=event.public_id)
        return Response(DeliveryOutputSerializer(shown).data, status=202)


class EndpointDeliveriesApi(ApiView):
    required_scope = ApiKeyScope.WEBHOOKS_READ

    @extend_schema(
        operation_id="webhook_endpoints_deliveries",
        summary="The endpoint's events and how their delivery went, newest first",
        tags=TAGS,
        parameters=[ENDPOINT_ID_PATH, *PAGE_PARAMETERS, REQUEST_ID_HEADER],
        responses={
            200: DeliveryPageSerializer,
            **problem_responses("invalid_request", "scope_missing", "not_found"),
        },
    )
    def get(self, request: Request, public_id: object) -> Response:
        endpoint = _endpoint(request, public_id)
        params = _page_params(request)
        page = paginate_newest_first(
            deliveries_for_endpoint(endpoint=endpoint),
            request=request,
            limit=params["limit"],
            cursor=params.get("cursor"),
        )
        return Response(
            {
                "results": DeliveryOutputSerializer(page.results, many=True).data,
                "next": page.next_url,
            }
        )
