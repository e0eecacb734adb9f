"""REST API v1: the tenant's suppression list (CONTRACT.md v1.1, "Suppression list")."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from portal.accounts.models import ApiKeyScope
from portal.api.schema import REQUEST_ID_HEADER, problem_responses
from portal.api.views import ApiView
from portal.audit.services import Actor
from portal.errors import InvalidRequest

from .suppressions import (
    SUPPRESSIBLE_CHANNELS,
    suppression_get,
    suppression_lift,
    suppressions_for_tenant,
)

MAX_LISTED = 1000


class SuppressionOutputSerializer(serializers.Serializer[Any]):
    channel = serializers.CharField()
    recipient = serializers.CharField(
        source="recipient_masked", help_text="Masked: the address itself is never stored."
    )
    connection = serializers.CharField(allow_blank=True)
    provider_code = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "Suppression"


CHANNEL_QUERY = OpenApiParameter(
    "channel", OpenApiTypes.STR, enum=list(SUPPRESSIBLE_CHANNELS), required=False
)
RECIPIENT_QUERY = OpenApiParameter(
    "recipient",
    OpenApiTypes.STR,
    required=False,
    description="An exact recipient (with `channel`): is it suppressed?",
)


class SuppressionListApi(ApiView):
    required_scope = ApiKeyScope.INTENTS_READ

    @extend_schema(
        operation_id="suppressions_list",
        summary="List this tenant's suppressed recipients, newest first",
        tags=["suppressions"],
        parameters=[CHANNEL_QUERY, RECIPIENT_QUERY, REQUEST_ID_HEADER],
        responses={
            200: SuppressionOutputSerializer(many=True),
            **problem_responses("invalid_request", "scope_missing"),
        },
    )
    def get(self, request: Request) -> Response:
        unknown = sorted(set(request.query_params) - {"channel", "recipient"})
        if unknown:
            # Like the intent list: an unknown parameter is a typo that would widen the list.
            raise InvalidRequest(f"Unknown query parameter(s): {', '.join(unknown)}.")
        rows = suppressions_for_tenant(
            tenant=request.tenant,  # type: ignore[attr-defined]
            # Present but empty is no channel at all: refused like any other (the enum).
            channel=request.query_params.get("channel"),
            recipient=request.query_params.get("recipient") or None,
        )[:MAX_LISTED]
        return Response(SuppressionOutputSerializer(rows, many=True).data)


class SuppressionLiftApi(ApiView):
    required_scope = ApiKeyScope.INTENTS_WRITE
    http_method_names = ["delete"]

    @extend_schema(
        operation_id="suppressions_lift",
        summary="Lift one suppression: the recipient may be sent to again",
        tags=["suppressions"],
        request=None,
        parameters=[
            OpenApiParameter(
                "channel",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                enum=list(SUPPRESSIBLE_CHANNELS),
            ),
            OpenApiParameter(
                "recipient",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                description="The exact recipient, URL-encoded (`%2B15550100001`).",
            ),
            REQUEST_ID_HEADER,
        ],
        responses={
            204: OpenApiResponse(description="Lifted."),
            **problem_responses("invalid_request", "scope_missing", "not_found"),
        },
    )
    def delete(self, request: Request, channel: str, recipient: str) -> Response:
        row = suppression_get(
            tenant=request.tenant,  # type: ignore[attr-defined]
            channel=channel,
            recipient=recipient,
        )
        suppression_lift(
            suppression=row,
            actor=Actor.api_key(request.auth),
            ip_address=request.META.get("REMOTE_ADDR"),
        )
        return Response(status=204)
