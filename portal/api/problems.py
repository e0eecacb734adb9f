"""Every API error as RFC 9457 ``application/problem+json``.

One catalogue maps each stable ``code`` (CONTRACT.md) to its HTTP status and title.
``problem_exception_handler`` is DRF's EXCEPTION_HANDLER: it turns domain errors, DRF's
own exceptions and anything unexpected into a problem document. The Django-level views
at the bottom cover what never reaches a DRF view (unknown URLs under ``/api/``, errors
raised by middleware), so no HTML page or stack trace ever answers an API client.

``type`` is ``https://docs.submission-portal.dev/problems/<code>``: a stable identifier
(documented in docs/api.md), not a promise that the URL resolves. Clients match ``code``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.signals import got_request_exception
from django.http import Http404, HttpRequest, HttpResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from portal.errors import DomainError
from portal.observability.context import current_request_id

logger = logging.getLogger("portal.api")

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://docs.submission-portal.dev/problems/"
API_PATH_PREFIX = "/api/"


@dataclass(frozen=True, slots=True)
class ProblemKind:
    status: int
    title: str


CATALOGUE: dict[str, ProblemKind] = {
    "invalid_request": ProblemKind(400, "Invalid request"),
    "idempotency_key_invalid": ProblemKind(400, "Idempotency-Key missing or invalid"),
    "unauthenticated": ProblemKind(401, "Authentication required"),
    "scope_missing": ProblemKind(403, "API key lacks the required scope"),
    "target_not_allowed": ProblemKind(403, "Target not allowed for this tenant"),
    "permission_denied": ProblemKind(403, "Permission denied"),
    "not_found": ProblemKind(404, "Not found"),
    "method_not_allowed": ProblemKind(405, "Method not allowed"),
    "not_acceptable": ProblemKind(406, "Not acceptable"),
    "idempotency_key_reused": ProblemKind(
        409, "Idempotency-Key already used for a different request"
    ),
    "already_terminal": ProblemKind(409, "Intent already finished"),
    "payload_too_large": ProblemKind(413, "Request body too large"),
    "unsupported_media_type": ProblemKind(415, "Unsupported media type"),
    "target_unknown": ProblemKind(422, "Unknown target"),
    "contract_incompatible": ProblemKind(422, "Contract version not compatible with the registry"),
    "payload_invalid": ProblemKind(422, "Payload does not match the target's schema"),
    "recipient_suppressed": ProblemKind(422, "Recipient is on the suppression list"),
    "rate_limited": ProblemKind(429, "Too many requests"),
    "quota_exceeded": ProblemKind(429, "Too many open intents"),
    "internal_error": ProblemKind(500, "Internal server error"),
}

# DRF exceptions that carry no code of ours, by class (checked in order).
_DRF_CODES: tuple[tuple[type[exceptions.APIException], str], ...] = (
    (exceptions.NotAuthenticated, "unauthenticated"),
    (exceptions.AuthenticationFailed, "unauthenticated"),
    (exceptions.NotFound, "not_found"),
    (exceptions.MethodNotAllowed, "method_not_allowed"),
    (exceptions.NotAcceptable, "not_acceptable"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (exceptions.Throttled, "rate_limited"),
    (exceptions.ParseError, "invalid_request"),
    (exceptions.ValidationError, "invalid_request"),
)

INTERNAL_ERROR_DETAIL = (
    "An unexpected error occurred. Quote the request_id when reporting it; "
    "retrying with the same Idempotency-Key is safe."
)


class PayloadTooLarge(DomainError):
    code = "payload_too_large"
    title = "Request body too large"


def problem_type(code: str) -> str:
    return f"{PROBLEM_TYPE_BASE}{code}"


def problem_body(
    code: str,
    detail: str,
    *,
    request_id: str,
    status: int | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The problem document; ``status`` defaults to the catalogue's for ``code``."""
    kind = CATALOGUE.get(code, CATALOGUE["invalid_request"])
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": kind.title,
        "status": status or kind.status,
        "code": code,
        "detail": detail,
        "request_id": request_id,
    }
    if errors:
        body["errors"] = errors
    return body


def retry_after_header(seconds: float | None) -> str:
    """Whole seconds, rounded up and at least 1, as ``Retry-After`` wants."""
    return str(max(1, math.ceil(seconds or 0)))


def json_pointer(path: list[str | int]) -> str:
    """RFC 6901 pointer for ``path`` ("" is the whole document)."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def validation_errors(detail: Any, path: list[str | int] | None = None) -> list[dict[str, str]]:
    """Flatten DRF's nested ValidationError detail into ``{"pointer", "message"}`` items."""
    path = path or []
    if isinstance(detail, dict):
        items: list[dict[str, str]] = []
        for key, value in detail.items():
            child = path if key in ("non_field_errors", "__all__") else [*path, key]
            items.extend(validation_errors(value, child))
        return items
    if isinstance(detail, list):
        items = []
        for index, value in enumerate(detail):
            if isinstance(value, dict | list):
                items.extend(validation_errors(value, [*path, index]))
            else:
                items.append({"pointer": json_pointer(path), "message": str(value)})
        return items
    return [{"pointer": json_pointer(path), "message": str(detail)}]


def _request_id(request: Any) -> str:
    return getattr(request, "request_id", "") or current_request_id()


def _drf_code(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    if isinstance(codes, str) and codes in CATALOGUE:
        return codes  # e.g. PermissionDenied(code="scope_missing")
    for exc_class, code in _DRF_CODES:
        if isinstance(exc, exc_class):
            return code
    if exc.status_code >= 500:
        return "internal_error"
    if exc.status_code == 403:
        return "permission_denied"
    return "invalid_request"


def _drf_detail(exc: exceptions.APIException, code: str) -> str:
    if isinstance(exc, exceptions.ValidationError):
        return "The request body or its fields are invalid; see errors."
    if isinstance(exc, exceptions.ParseError):
        return f"Malformed JSON body: {exc.detail}"
    if isinstance(exc, exceptions.Throttled):
        return "Request rate limit for this tenant exceeded; retry after Retry-After seconds."
    return str(exc.detail)


def _problem_for(exc: Exception, request: Any) -> tuple[dict[str, Any], dict[str, str]]:
    request_id = _request_id(request)
    headers: dict[str, str] = {}
    if isinstance(exc, DomainError):
        code = exc.code if exc.code in CATALOGUE else "invalid_request"
        if code != exc.code:
            logger.warning("domain error code %r is not in the API catalogue", exc.code)
        retry_after = getattr(exc, "retry_after_s", None)
        if code == "quota_exceeded" or retry_after is not None:
            headers["Retry-After"] = retry_after_header(retry_after)
        body = problem_body(code, exc.detail, request_id=request_id, errors=exc.errors)
        return body, headers

    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, exceptions.APIException):
        code = _drf_code(exc)
        errors = (
            validation_errors(exc.detail) if isinstance(exc, exceptions.ValidationError) else None
        )
        if auth_header := getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = auth_header
        if isinstance(exc, exceptions.Throttled):
            # DRF sets Throttled.wait in __init__; the stubs only declare the argument.
            headers["Retry-After"] = retry_after_header(exc.wait)  # type: ignore[attr-defined]
        status = exc.status_code if code == "internal_error" else None
        detail = _drf_detail(exc, code) if code != "internal_error" else INTERNAL_ERROR_DETAIL
        return problem_body(code, detail, request_id=request_id, status=status, errors=errors), (
            headers
        )

    return problem_body("internal_error", INTERNAL_ERROR_DETAIL, request_id=request_id), headers


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF EXCEPTION_HANDLER: every exception becomes a problem response, never None."""
    request = context.get("request")
    body, headers = _problem_for(exc, request)
    _settle(exc, body, request)
    return Response(body, status=body["status"], headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def problem_response(
    exc: Exception, request: HttpRequest, *, headers: dict[str, str] | None = None
) -> HttpResponse:
    """``problem_exception_handler``'s answer from a view outside DRF: the same document,
    headers, logging and rollback, rendered as ``problem_http_response`` renders."""
    body, problem_headers = _problem_for(exc, request)
    _settle(exc, body, request)
    return _rendered(body, {**(headers or {}), **problem_headers})


def _settle(exc: Exception, body: dict[str, Any], request: Any) -> None:
    """Log and signal a server error (a client's problem is no error of ours); roll back
    an ATOMIC_REQUESTS transaction, as DRF's own handler does."""
    if body["status"] >= 500:
        logger.error(
            "unhandled API error",
            exc_info=exc,
            extra={"request_id": body["request_id"]},
        )
        django_request = getattr(request, "_request", request)
        got_request_exception.send(sender=None, request=django_request)
    set_rollback()


def problem_http_response(
    request: HttpRequest,
    code: str,
    detail: str,
    headers: dict[str, str] | None = None,
    *,
    errors: list[dict[str, Any]] | None = None,
) -> HttpResponse:
    """A problem document from plain Django code, in the format DRF's JSONRenderer gives
    the others (compact, UTF-8, U+2028/9 escaped), so a client sees one format from
    every path. Not through the renderer itself: the 500 handler must work when it fails."""
    body = problem_body(code, detail, request_id=_request_id(request), errors=errors)
    return _rendered(body, headers or {})


def _rendered(body: dict[str, Any], headers: dict[str, str]) -> HttpResponse:
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    response = HttpResponse(text.encode(), status=body["status"], content_type=PROBLEM_CONTENT_TYPE)
    for name, value in headers.items():
        response[name] = value
    return response


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith(API_PATH_PREFIX)


@csrf_exempt
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Catch-all for unknown URLs under /api/ (any method): 404 problem, never HTML."""
    return problem_http_response(request, "not_found", f"No API endpoint at {request.path}.")


def handler400(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_request(request):
        return problem_http_response(request, "invalid_request", "Bad request.")
    return defaults.bad_request(request, exception)


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_request(request):
        return problem_http_response(request, "not_found", f"No API endpoint at {request.path}.")
    return defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    if is_api_request(request):
        return problem_http_response(request, "internal_error", INTERNAL_ERROR_DETAIL)
    return defaults.server_error(request)
