"""``GET /api/v1/``: what a client developer can call, and a hint for a trailing slash.

Plain Django views, not DRF: they need no key (the index names endpoints, never data)
and answer the same problem+json as the rest of /api/.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve, reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from portal.api.problems import problem_http_response

ENDPOINTS = (
    ("GET", "intents", "list your intents (cursor pages, filters)"),
    ("POST", "intents", "submit an intent (Idempotency-Key header required)"),
    ("GET", "intents/{id}", "one intent"),
    ("GET", "intents/{id}/attempts", "its delivery attempts"),
    ("GET", "intents/{id}/receipts", "its delivery receipts (provider and our clock)"),
    ("POST", "intents/{id}/cancel", "cancel it while it is open"),
    ("GET", "targets", "the targets your tenant may use"),
    ("GET", "suppressions", "recipients on your suppression list (?channel=&recipient=)"),
    ("DELETE", "suppressions/{channel}/{recipient}", "lift one suppression"),
    ("GET", "webhook-endpoints", "your webhook endpoints (events about your intents)"),
    ("POST", "webhook-endpoints", "register one; its signing secret is shown once"),
    ("GET", "webhook-endpoints/{id}", "one endpoint (PATCH changes it, DELETE removes it)"),
    ("POST", "webhook-endpoints/{id}/rotate-secret", "a new secret; the old signs for 24 h"),
    ("POST", "webhook-endpoints/{id}/test", "send it a webhook.test event"),
    ("GET", "webhook-endpoints/{id}/deliveries", "its events and how their delivery went"),
)


@require_safe
def api_index(request: HttpRequest) -> JsonResponse:
    base = request.path
    return JsonResponse(
        {
            "service": "Submission Portal API v1",
            "authentication": "Authorization: Bearer <api key>",
            "docs": request.build_absolute_uri(reverse("api-docs")),
            "schema": request.build_absolute_uri(reverse("api-schema")),
            "endpoints": [
                {"method": method, "path": f"{base}{path}", "does": does}
                for method, path, does in ENDPOINTS
            ],
        }
    )


@csrf_exempt
def trailing_slash_hint(request: HttpRequest, path: str) -> HttpResponse:
    """404 for ``…/intents/``, naming the endpoint without the slash when there is one."""
    without = request.path.rstrip("/")
    try:
        # /api/ ends in a catch-all 404 that matches anything: that is no endpoint.
        exists = resolve(without).url_name != "api-not-found"
    except Resolver404:
        exists = False
    if not exists:
        return problem_http_response(request, "not_found", f"No API endpoint at {request.path}.")
    return problem_http_response(
        request,
        "not_found",
        f"No API endpoint at {request.path}; API paths have no trailing slash: {without}",
    )
