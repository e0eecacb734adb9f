"""The base of every API view, the per-method router, and the schema and docs views."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.accounts.authentication import ApiKeyAuthentication

from .permissions import HasScope
from .problems import PayloadTooLarge, problem_http_response
from .schema import SCHEMA_SETTINGS, ApiSchemaGenerator

# Deeper than any sane payload, far shallower than the recursion the JSON decoder, the
# JSON Schema validator and the renderer would need.
MAX_JSON_DEPTH = 64
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def json_problem(data: Any) -> str | None:
    """Why ``data`` (decoded JSON) cannot be stored and echoed back, or None.

    ``"\\ud800"`` is valid JSON syntax but not a character: it cannot be encoded as
    UTF-8, so an intent holding it could never be rendered again (every list that
    contained it would fail).
    """
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, Mapping | list):
            if depth >= MAX_JSON_DEPTH:
                return f"JSON nested deeper than {MAX_JSON_DEPTH} levels."
            items = value.items() if isinstance(value, Mapping) else enumerate(value)
            for key, child in items:
                if isinstance(key, str) and _LONE_SURROGATE.search(key):
                    return "JSON string holds an unpaired UTF-16 surrogate escape."
                stack.append((child, depth + 1))
        elif isinstance(value, str) and _LONE_SURROGATE.search(value):
            return "JSON string holds an unpaired UTF-16 surrogate escape."
    return None


class StrictJSONParser(JSONParser):
    """DRF's strict JSON parser, refusing what would fail later as a 500 (see json_problem)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.") from None
        problem = json_problem(data)
        if problem is not None:
            raise ParseError(problem)
        return data


class ApiView(APIView):
    """One operation: Bearer key, ``required_scope``, JSON in and out, a body size limit.

    OPTIONS is not offered (the OpenAPI document describes the API); any method a
    view lacks is a 405 problem with ``Allow``.
    """

    required_scope: str = ""
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasScope]
    renderer_classes = [JSONRenderer]
    parser_classes = [StrictJSONParser]
    throttle_classes: list[type] = []
    http_method_names = ["get", "post", "head"]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        enforce_body_limit(request._request)
        super().initial(request, *args, **kwargs)


def enforce_body_limit(request: HttpRequest) -> None:
    """413 when the declared or the actual body exceeds API_MAX_BODY_BYTES, before parsing."""
    limit = settings.API_MAX_BODY_BYTES
    too_large = PayloadTooLarge(f"The request body may be at most {limit} bytes.")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise too_large
    try:
        body = request.body
    except RequestDataTooBig:
        raise too_large from None
    if len(body) > limit:
        raise too_large


def method_router(**views: type[APIView]) -> Callable[..., HttpResponse]:
    """One URL, one APIView per method: ``method_router(get=ListApi, post=CreateApi)``."""
    handlers = {method.upper(): view.as_view() for method, view in views.items()}
    if "GET" in handlers:
        handlers["HEAD"] = handlers["GET"]
    allow = ", ".join(method for method in handlers if method != "HEAD")

    @csrf_exempt
    def route(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        handler = handlers.get(request.method or "")
        if handler is None:
            return problem_http_response(
                request,
                "method_not_allowed",
                f'Method "{request.method}" not allowed.',
                headers={"Allow": allow},
            )
        return handler(request, *args, **kwargs)

    route.method_views = {m: h for m, h in handlers.items() if m != "HEAD"}  # type: ignore[attr-defined]
    return route


class ProblemOnErrorMixin:
    """For views with non-JSON renderers: render an error as the problem JSON it is."""

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        if isinstance(response, Response) and getattr(response, "exception", False):
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = JSONRenderer.media_type
        return response


class ApiSchemaView(ProblemOnErrorMixin, SpectacularAPIView):
    """The OpenAPI 3 document; public, like the documentation it feeds."""

    http_method_names = ["get", "head"]
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    generator_class = ApiSchemaGenerator
    custom_settings = SCHEMA_SETTINGS


class ApiDocsView(ProblemOnErrorMixin, SpectacularSwaggerSplitView):
    """Swagger UI from drf-spectacular-sidecar's files: no CDN, no inline script.

    The split view serves its init script from this same URL (``?script``), so the
    page works under ``script-src 'self'``. The online validator badge is switched off
    (it would send the schema URL to validator.swagger.io).
    """

    http_method_names = ["get", "head"]
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    url_name = "api-schema"
    title = "Submission Portal API"

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        # drf-spectacular leaves its views' get() unannotated
        response: Response = super().get(request, *args, **kwargs)  # type: ignore[no-untyped-call]
        if request.GET.get("script") is not None:
            ui_settings = {
                **spectacular_settings.SWAGGER_UI_SETTINGS,
                "validatorUrl": None,
                "persistAuthorization": False,
            }
            response.data["settings"] = json.dumps(ui_settings)
        return response
