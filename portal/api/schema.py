"""OpenAPI helpers: the problem schema, error responses with examples, Bearer auth.

Every operation documents each problem it can answer with (``problem_responses``) as
``application/problem+json``, plus a ``default`` problem for anything else, and the
``X-Request-ID`` header every response carries.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerExtension,
)
from drf_spectacular.generators import EndpointEnumerator, SchemaGenerator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from .problems import CATALOGUE, PROBLEM_CONTENT_TYPE, problem_body

EXAMPLE_REQUEST_ID = "5f0c6a1e9b7d4b1c8a3e2f4d6c8b0a12"

PROBLEM_EXAMPLE_DETAILS: dict[str, tuple[str, list[dict[str, str]] | None]] = {
    "invalid_request": (
        "The request body or its fields are invalid; see errors.",
        [{"pointer": "/target", "message": "This field is required."}],
    ),
    "idempotency_key_invalid": (
        "The Idempotency-Key header is required: 1 to 255 printable ASCII characters.",
        None,
    ),
    "unauthenticated": ("Invalid API key.", None),
    "scope_missing": ("This API key lacks the 'intents:write' scope.", None),
    "target_not_allowed": ("Target 'push.promo' is not allowed for this tenant.", None),
    "not_found": ("No intent with this id.", None),
    "method_not_allowed": ('Method "DELETE" not allowed.', None),
    "not_acceptable": ("Could not satisfy the request Accept header.", None),
    "idempotency_key_reused": (
        "This Idempotency-Key was used for a different request.",
        None,
    ),
    "already_terminal": ("The intent is already accepted.", None),
    "payload_too_large": ("The request body may be at most 65536 bytes.", None),
    "unsupported_media_type": ('Unsupported media type "text/plain" in request.', None),
    "target_unknown": ("No target 'sms.otpp' in the registry.", None),
    "contract_incompatible": (
        "Target 'sms.otp' is at version 1.2; version 2.0 is not compatible.",
        None,
    ),
    "payload_invalid": (
        "The payload does not match the target's schema; see errors.",
        [{"pointer": "/to", "message": "'5550100001' does not match '^\\+[1-9][0-9]{7,14}$'"}],
    ),
    "rate_limited": (
        "Request rate limit for this tenant exceeded; retry after Retry-After seconds.",
        None,
    ),
    "quota_exceeded": ("This tenant already has 100000 open intents.", None),
    "internal_error": (
        "An unexpected error occurred. Quote the request_id when reporting it.",
        None,
    ),
}


class ProblemErrorSerializer(serializers.Serializer[Any]):
    pointer = serializers.CharField(
        required=False,
        help_text=(
            "JSON Pointer (RFC 6901) into the request body; for `payload_invalid`, into `payload`."
        ),
    )
    parameter = serializers.CharField(required=False, help_text="The query parameter at fault.")
    message = serializers.CharField()

    class Meta:
        ref_name = "ProblemError"


class ProblemSerializer(serializers.Serializer[Any]):
    """RFC 9457 problem details with the stable ``code`` of CONTRACT.md."""

    type = serializers.CharField(
        help_text="https://docs.submission-portal.dev/problems/<code>: a stable identifier."
    )
    title = serializers.CharField()
    status = serializers.IntegerField()
    code = serializers.ChoiceField(choices=sorted(CATALOGUE))
    detail = serializers.CharField()
    request_id = serializers.CharField(help_text="Also in the X-Request-ID response header.")
    # DRF's metaclass moves declared fields into _declared_fields, so this never shadows
    # Serializer.errors at runtime; mypy cannot see that.
    errors = ProblemErrorSerializer(many=True, required=False)  # type: ignore[assignment]

    class Meta:
        ref_name = "Problem"


def problem_example(code: str) -> dict[str, Any]:
    detail, errors = PROBLEM_EXAMPLE_DETAILS[code]
    return problem_body(code, detail, request_id=EXAMPLE_REQUEST_ID, errors=errors)


def problem_responses(*codes: str) -> dict[Any, OpenApiResponse]:
    """The documented error responses of an operation: ``codes`` plus the common ones."""
    by_status: dict[int, list[str]] = defaultdict(list)
    for code in (*codes, "unauthenticated", "payload_too_large", "internal_error"):
        if code not in by_status[CATALOGUE[code].status]:
            by_status[CATALOGUE[code].status].append(code)
    responses: dict[Any, OpenApiResponse] = {}
    for status, status_codes in sorted(by_status.items()):
        responses[(status, PROBLEM_CONTENT_TYPE)] = OpenApiResponse(
            response=ProblemSerializer,
            description=" / ".join(f"`{code}`" for code in status_codes),
            examples=[
                OpenApiExample(
                    code,
                    value=problem_example(code),
                    media_type=PROBLEM_CONTENT_TYPE,
                    status_codes=[str(status)],
                    response_only=True,
                )
                for code in status_codes
            ],
        )
    responses[("default", PROBLEM_CONTENT_TYPE)] = OpenApiResponse(
        response=ProblemSerializer, description="Any other problem, e.g. 405 or 406."
    )
    return responses


REQUEST_ID_HEADER = OpenApiParameter(
    "X-Request-ID",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=True,
    description="The request's correlation id (the client's X-Request-ID when it sent a sane one).",
)
RETRY_AFTER_HEADER = OpenApiParameter(
    "Retry-After",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    response=[429],
    description="Seconds to wait before retrying.",
)


class ClosedSerializer(serializers.Serializer[Any]):
    """A request body that rejects unknown fields (a typo never passes silently)."""

    def to_internal_value(self, data: Any) -> Any:
        unknown: dict[str, list[str]] = {}
        if isinstance(data, dict):
            unknown = {name: ["Unknown field."] for name in sorted(set(data) - set(self.fields))}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            # Every fault in one answer: the known fields' problems and the unknown ones.
            if unknown and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**exc.detail, **unknown}) from None
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        return value


# drf-spectacular leaves its extensions' __init_subclass__ (which registers them), the
# enumerator's get_allowed_methods and the generator's create_view unannotated.
class ClosedSerializerExtension(OpenApiSerializerExtension):  # type: ignore[no-untyped-call]
    target_class = ClosedSerializer
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema: dict[str, Any] = auto_schema._map_basic_serializer(self.target, direction)
        if direction == "request":
            schema["additionalProperties"] = False
        return schema


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "portal.accounts.authentication.ApiKeyAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key: `Authorization: Bearer <prefix>.<secret>`.",
        }


class ApiEndpointEnumerator(EndpointEnumerator):
    """Understands ``method_router`` URLs: one APIView per method behind one path."""

    def should_include_endpoint(self, path: str, callback: Any) -> bool:
        if hasattr(callback, "method_views"):
            return True
        return super().should_include_endpoint(path, callback)

    def get_allowed_methods(self, callback: Any) -> list[str]:
        if hasattr(callback, "method_views"):
            return list(callback.method_views)
        methods: list[str] = super().get_allowed_methods(callback)  # type: ignore[no-untyped-call]
        return methods


class ApiSchemaGenerator(SchemaGenerator):
    endpoint_inspector_cls = ApiEndpointEnumerator

    def create_view(self, callback: Any, method: str, request: Any = None) -> Any:
        method_views = getattr(callback, "method_views", None)
        if method_views:
            callback = method_views[method]
        return super().create_view(callback, method, request)  # type: ignore[no-untyped-call]


# drf-spectacular settings applied to this API's schema view only (custom_settings).
SCHEMA_SETTINGS: dict[str, Any] = {}
