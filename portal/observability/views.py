"""HTTP edges: /metrics, /healthz, /readyz and the operations dashboard. Thin by design."""

from __future__ import annotations

import hmac
from typing import Protocol, cast

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST

from portal import clock
from portal.accounts.roles import tenant_ids_visible_to
from portal.audit.services import ip_from_request

from . import exposition, health
from .dashboard import dashboard_context, window_hours

LOOPBACK_ADDRESSES = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})


def metrics_refusal(request: HttpRequest) -> HttpResponse | None:
    """None when the scrape may proceed, else the 401/403 to answer.

    With ``METRICS_TOKEN`` set, only ``Authorization: Bearer <token>`` is accepted, from
    anywhere. Without it, only clients on the loopback interface are (the client address
    of ``ip_from_request``; production requires a token unless explicitly opted out).
    """
    token = settings.METRICS_TOKEN or ""
    if token:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), token.encode()
        ):
            return None
        response = HttpResponse(
            "A bearer token is required.\n", status=401, content_type="text/plain"
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if (ip_from_request(request) or "") in LOOPBACK_ADDRESSES:
        return None
    return HttpResponse(
        "Metrics are served to loopback clients only unless METRICS_TOKEN is set.\n",
        status=403,
        content_type="text/plain",
    )


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    refusal = metrics_refusal(request)
    if refusal is not None:
        return refusal
    return HttpResponse(exposition.render_latest(), content_type=CONTENT_TYPE_LATEST)


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and serving; touches nothing else."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = health.readiness()
    failed = [check.name for check in checks if not check.ok]
    body = {
        "status": "not_ready" if failed else "ready",
        "failed": failed,
        "checks": [check.as_dict() for check in checks],
    }
    return JsonResponse(body, status=503 if failed else 200)


class _OtpUser(Protocol):
    """``request.user`` as django-otp's OTPMiddleware leaves it, ``is_verified`` attached."""

    is_active: bool
    is_staff: bool

    def is_verified(self) -> bool: ...


def operations_dashboard(request: HttpRequest) -> TemplateResponse:
    """Mounted through ``admin.site.admin_view`` (login and OTP redirect); checked again
    here so the view is never served to anyone but verified staff."""
    user = cast(_OtpUser, request.user)
    if not (user.is_active and user.is_staff and user.is_verified()):
        raise PermissionDenied
    context = {
        **admin.site.each_context(request),
        "title": "Operations",
        **dashboard_context(
            now=clock.db_now(),
            hours=window_hours(request.GET.get("hours")),
            tenant_ids=tenant_ids_visible_to(request.user),
        ),
    }
    return TemplateResponse(request, "observability/dashboard.html", context)
