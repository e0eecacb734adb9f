"""REST API v1 for intents and targets: one thin view per operation.

Views parse and authorise; ``intents.services`` and ``intents.selectors`` decide.
Every error leaves through ``portal.api.problems`` as problem+json.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, cast

from django.http import HttpRequest, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework.request import Request
from rest_framework.response import Response

from portal.accounts.models import ApiKeyScope, Tenant
from portal.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, paginate_newest_first
from portal.api.schema import REQUEST_ID_HEADER, RETRY_AFTER_HEADER, problem_responses
from portal.api.views import ApiView
from portal.errors import InvalidRequest

from .api_intake import intent_url, submit_without_drf

if TYPE_CHECKING:
    from rest_framework.views import AsView, GenericView
from .models import Intent, IntentStatus
from .registry import KEY_PATTERN
from .selectors import (
    attempts_for_intent,
    intent_get_for_tenant,
    intent_list_for_tenant,
    receipts_for_intent,
    targets_for_tenant,
)
from .serializers import (
    AttemptOutputSerializer,
    IntentCreateInputSerializer,
    IntentListFilterSerializer,
    IntentOutputSerializer,
    IntentPageSerializer,
    ReceiptOutputSerializer,
    TargetOutputSerializer,
    intent_representation,
)
from .services import intent_cancel, intent_submit, validate_idempotency_key


class TenantRequest(Request):
    """How the views see a request: for type checking only, never instantiated.

    ``ApiKeyAuthentication`` sets ``tenant`` (every view here requires a key) and
    ``RequestIdMiddleware`` sets ``request_id`` before a view runs.
    """

    tenant: Tenant
    request_id: str


IDEMPOTENCY_KEY_HEADER = OpenApiParameter(
    "Idempotency-Key",
    {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": r"^[\x21-\x7E]([\x20-\x7E]*[\x21-\x7E])?$",
    },
    OpenApiParameter.HEADER,
    required=True,
    description=(
        "1 to 255 printable ASCII characters, unique per request you mean to make once. "
        "Retrying with the same key and the same request returns the first result."
    ),
)
LOCATION_HEADER = OpenApiParameter(
    "Location",
    OpenApiTypes.URI,
    OpenApiParameter.HEADER,
    response=[201],
    description="URL of the new intent.",
)
REPLAYED_HEADER = OpenApiParameter(
    "Idempotent-Replayed",
    {"type": "string", "enum": ["true"]},
    OpenApiParameter.HEADER,
    response=[200],
    description="Present on a replay: this key already created the intent returned.",
)
PUBLIC_ID_PATH = OpenApiParameter(
    "public_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The intent's id."
)

EXAMPLE_INTENT = {
    "id": "0b7e5bd4-54a5-4bd6-9d43-8bd3e0a5f0a1",
    "idempotency_key": "order-A-17-otp",
    "target": "sms.otp",
    "contract_version": "1.2",
    "status": "pending",
    "attempts": 0,
    "next_attempt_at": "2026-01-05T12:00:00Z",
    "deadline_at": "2026-01-05T12:10:00Z",
    "created_at": "2026-01-05T12:00:00Z",
    "updated_at": "2026-01-05T12:00:00Z",
    "finished_at": None,
    "reason_code": None,
    "gateway_message_id": None,
    "cancel_requested": False,
    "generation": 1,
    "payload_sha256": "3f0a6c2e1b4d5a7c9e8f0b1a2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5",
    "metadata": {"order": "A-17"},
    "connection": None,
    "delivery_status": None,
    "delivered_at": None,
}
EXAMPLE_CANCELLED = {
    **EXAMPLE_INTENT,
    "status": "cancelled",
    "next_attempt_at": None,
    "finished_at": "2026-01-05T12:00:03Z",
    "updated_at": "2026-01-05T12:00:03Z",
    "reason_code": "cancelled_by_client",
    "cancel_requested": True,
}


def _intent_data(intent: Intent) -> dict[str, Any]:
    return intent_representation(intent)


class IntentCreateApi(ApiView):
    required_scope = ApiKeyScope.INTENTS_WRITE

    @classmethod
    def as_view(cls, **initkwargs: Any) -> AsView[GenericView]:
        """DRF's view behind ``submit_without_drf``, which answers the requests it can
        answer exactly as this view would, for less CPU (see ``intents.api_intake``)."""
        drf_view = super().as_view(**initkwargs)
        allow = ", ".join(cls().allowed_methods)

        @functools.wraps(drf_view)  # keeps cls, initkwargs and csrf_exempt for Django and DRF
        def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            answered = submit_without_drf(request, allow=allow)
            return answered if answered is not None else drf_view(request, *args, **kwargs)

        return cast("AsView[GenericView]", view)

    @extend_schema(
        operation_id="intents_create",
        summary="Submit an intent",
        description=(
            "Stores an intent to deliver `payload` to `target`. Idempotent per "
            "`Idempotency-Key`: the same key with the same target, version and payload "
            "returns the intent it created (200, `Idempotent-Replayed: true`); with a "
            "different request it is refused (409)."
        ),
        tags=["intents"],
        request=IntentCreateInputSerializer,
        parameters=[
            IDEMPOTENCY_KEY_HEADER,
            REQUEST_ID_HEADER,
            LOCATION_HEADER,
            REPLAYED_HEADER,
            RETRY_AFTER_HEADER,
        ],
        responses={
            201: OpenApiResponse(IntentOutputSerializer, description="Created."),
            200: OpenApiResponse(
                IntentOutputSerializer, description="Idempotent replay of an earlier request."
            ),
            **problem_responses(
                "invalid_request",
                "idempotency_key_invalid",
                "scope_missing",
                "target_not_allowed",
                "idempotency_key_reused",
                "unsupported_media_type",
                "target_unknown",
                "contract_incompatible",
                "payload_invalid",
                "rate_limited",
                "quota_exceeded",
            ),
        },
        examples=[
            OpenApiExample(
                "sms.otp",
                request_only=True,
                value={
                    "target": "sms.otp",
                    "contract_version": "1.0",
                    "payload": {"to": "+15550100001", "text": "Your code is 123456"},
                    "deadline_seconds": 600,
                    "metadata": {"order": "A-17"},
                },
            ),
            OpenApiExample(
                "created", response_only=True, status_codes=["201", "200"], value=EXAMPLE_INTENT
            ),
        ],
    )
    def post(self, request: TenantRequest) -> Response:
        # The header first: a request without a usable key is refused before its body.
        idempotency_key = validate_idempotency_key(request.headers.get("Idempotency-Key"))
        serializer = IntentCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = intent_submit(
            tenant=request.tenant,
            idempotency_key=idempotency_key,
            target_key=data["target"],
            contract_version=data.get("contract_version"),
            payload=data["payload"],
            deadline_seconds=data.get("deadline_seconds"),
            metadata=data.get("metadata") or {},
            correlation_id=request.request_id,
        )
        if result.created:
            return Response(
                _intent_data(result.intent),
                status=201,
                headers={"Location": intent_url(request, result.intent)},
            )
        return Response(
            _intent_data(result.intent), status=200, headers={"Idempotent-Replayed": "true"}
        )


class IntentListApi(ApiView):
    required_scope = ApiKeyScope.INTENTS_READ

    @extend_schema(
        operation_id="intents_list",
        summary="List intents, newest first",
        description=(
            "Cursor-paginated: follow `next` until it is null. Filters combine with AND; "
            "`created_after` and `created_before` are exclusive."
        ),
        tags=["intents"],
        parameters=[
            OpenApiParameter("status", str, enum=IntentStatus.values),
            OpenApiParameter(
                "target",
                {"type": "string", "pattern": KEY_PATTERN.pattern, "maxLength": 100},
                description="Target key, e.g. `sms.otp`.",
            ),
            OpenApiParameter(
                "created_after", OpenApiTypes.DATETIME, description="ISO 8601; naive is UTC."
            ),
            OpenApiParameter(
                "created_before", OpenApiTypes.DATETIME, description="ISO 8601; naive is UTC."
            ),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            ),
            OpenApiParameter(
                "cursor",
                {"type": "string", "minLength": 1},
                description="The `next` link's cursor.",
            ),
            REQUEST_ID_HEADER,
        ],
        responses={
            200: IntentPageSerializer,
            **problem_responses("invalid_request", "scope_missing"),
        },
    )
    def get(self, request: TenantRequest) -> Response:
        params = IntentListFilterSerializer(data=request.query_params)
        if not params.is_valid():
            raise InvalidRequest(
                "Invalid query parameters; see errors.",
                errors=[
                    {"parameter": name, "message": str(message)}
                    for name, messages in params.errors.items()
                    for message in messages
                ],
            )
        filters = dict(params.validated_data)
        limit = filters.pop("limit")
        cursor = filters.pop("cursor", None)
        page = paginate_newest_first(
            intent_list_for_tenant(tenant=request.tenant, **filters),
            request=request,
            limit=limit,
            cursor=cursor,
        )
        return Response(
            {
                "results": [intent_representation(intent) for intent in page.results],
                "next": page.next_url,
            }
        )


class IntentDetailApi(ApiView):
    required_scope = ApiKeyScope.INTENTS_READ

    @extend_schema(
        operation_id="intents_retrieve",
        summary="Get one intent",
        tags=["intents"],
        parameters=[PUBLIC_ID_PATH, REQUEST_ID_HEADER],
        responses={
            200: OpenApiResponse(IntentOutputSerializer),
            **problem_responses("scope_missing", "not_found"),
        },
        examples=[OpenApiExample("pending", response_only=True, value=EXAMPLE_INTENT)],
    )
    def get(self, request: TenantRequest, public_id: str) -> Response:
        intent = intent_get_for_tenant(tenant=request.tenant, public_id=public_id)
        return Response(_intent_data(intent))


class IntentAttemptsApi(ApiView):
    required_scope = ApiKeyScope.INTENTS_READ

    @extend_schema(
        operation_id="intents_attempts",
        summary="List an intent's delivery attempts, oldest first",
        tags=["intents"],
        parameters=[PUBLIC_ID_PATH, REQUEST_ID_HEADER],
        responses={
            200: AttemptOutputSerializer(many=True),
            **problem_responses("scope_missing", "not_found"),
        },
    )
    def get(self, request: TenantRequest, public_id: str) -> Response:
        intent = intent_get_for_tenant(tenant=request.tenant, public_id=public_id)
        attempts = attempts_for_intent(intent=intent)
        return Response(AttemptOutputSerializer(attempts, many=True).data)


class IntentReceiptsApi(ApiView):
    required_scope = ApiKeyScope.INTENTS_READ

    @extend_schema(
        operation_id="intents_receipts",
        summary="List an intent's delivery receipts, in the order they reached us",
        description=(
            "Each receipt keeps two clocks: `occurred_at` is the provider's, `received_at` "
            "ours. Duplicates are not listed twice; a late or out-of-order receipt is "
            "listed, but never moved a final `delivery_status`."
        ),
        tags=["intents"],
        parameters=[PUBLIC_ID_PATH, REQUEST_ID_HEADER],
        responses={
            200: ReceiptOutputSerializer(many=True),
            **problem_responses("scope_missing", "not_found"),
        },
    )
    def get(self, request: TenantRequest, public_id: str) -> Response:
        intent = intent_get_for_tenant(tenant=request.tenant, public_id=public_id)
        receipts = receipts_for_intent(intent=intent)
        return Response(ReceiptOutputSerializer(receipts, many=True).data)


class IntentCancelApi(ApiView):
    required_scope = ApiKeyScope.INTENTS_CANCEL

    @extend_schema(
        operation_id="intents_cancel",
        summary="Cancel an intent",
        description=(
            "A pending intent is cancelled at once. An in-flight one is marked "
            "`cancel_requested: true`; if the running attempt is accepted, the intent "
            "ends `accepted` (the cancel lost the race). No request body."
        ),
        tags=["intents"],
        request=None,
        parameters=[PUBLIC_ID_PATH, REQUEST_ID_HEADER],
        responses={
            200: OpenApiResponse(IntentOutputSerializer),
            **problem_responses("scope_missing", "not_found", "already_terminal"),
        },
        examples=[OpenApiExample("cancelled", response_only=True, value=EXAMPLE_CANCELLED)],
    )
    def post(self, request: TenantRequest, public_id: str) -> Response:
        intent = intent_cancel(tenant=request.tenant, public_id=public_id)
        return Response(_intent_data(intent))


class TargetListApi(ApiView):
    required_scope = ApiKeyScope.TARGETS_READ

    @extend_schema(
        operation_id="targets_list",
        summary="List the targets this tenant may use",
        tags=["targets"],
        parameters=[REQUEST_ID_HEADER],
        responses={
            200: TargetOutputSerializer(many=True),
            **problem_responses("scope_missing"),
        },
    )
    def get(self, request: TenantRequest) -> Response:
        targets = targets_for_tenant(tenant=request.tenant)
        return Response(TargetOutputSerializer(targets, many=True).data)
