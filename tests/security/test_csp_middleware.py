"""portal.csp_middleware: the headers django-csp's own middleware sets, the plain policy
built once."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast
from unittest import mock

import pytest
from csp import utils as csp_utils
from csp.constants import NONCE
from csp.decorators import csp_exempt, csp_update
from csp.exceptions import CSPNonceError
from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from portal.csp_middleware import CSPMiddleware

# The nonce sentinel: a request that used its nonce gets it in script-src.
POLICY = {"DIRECTIVES": {"default-src": ["'self'"], "script-src": ["'self'", NONCE]}}
REPORT_ONLY = {"DIRECTIVES": {"default-src": ["'none'"], "report-uri": "/csp-report"}}
HEADERS = ("Content-Security-Policy", "Content-Security-Policy-Report-Only")


def plain(request: Any) -> HttpResponse:
    return HttpResponse("ok")


@csp_update({"img-src": ["data:"]})
def updated(request: Any) -> HttpResponse:
    return HttpResponse("ok")


@csp_exempt()
def exempt(request: Any) -> HttpResponse:
    return HttpResponse("ok")


def preset(request: Any) -> HttpResponse:
    response = HttpResponse("ok")
    response["Content-Security-Policy"] = "default-src 'none'"
    return response


def uses_nonce(request: Any) -> HttpResponse:
    return HttpResponse(f"nonce {request.csp_nonce}")


def not_found(request: Any) -> HttpResponse:
    return HttpResponse("missing", status=404)


def respond(middleware: Any, path: str = "/") -> HttpResponse:
    return cast(HttpResponse, middleware(RequestFactory().get(path)))


def headers_from(middleware_class: type, view: Callable[[Any], HttpResponse], path: str) -> dict:
    response = respond(middleware_class(view), path)
    return {name: response.get(name) for name in HEADERS}


CASES = [
    (plain, "/api/v1/intents"),
    (updated, "/"),
    (exempt, "/"),
    (preset, "/"),
    (uses_nonce, "/"),
    (not_found, "/nowhere"),
    (plain, "/static/app.css"),
]


@pytest.mark.parametrize(
    "policy_settings",
    [
        {"CONTENT_SECURITY_POLICY": POLICY},
        {"CONTENT_SECURITY_POLICY": POLICY, "CONTENT_SECURITY_POLICY_REPORT_ONLY": REPORT_ONLY},
        {"CONTENT_SECURITY_POLICY": {**POLICY, "EXCLUDE_URL_PREFIXES": ["/static/"]}},
        {"CONTENT_SECURITY_POLICY": POLICY, "DEBUG": True},
        {"CONTENT_SECURITY_POLICY": None, "CONTENT_SECURITY_POLICY_REPORT_ONLY": REPORT_ONLY},
    ],
    ids=["policy", "and-report-only", "excluded-prefix", "debug", "report-only-alone"],
)
@pytest.mark.parametrize(("view", "path"), CASES, ids=lambda case: getattr(case, "__name__", case))
def test_sets_the_headers_django_csp_sets(policy_settings, view, path):
    with override_settings(**policy_settings):
        ours = headers_from(CSPMiddleware, view, path)
        theirs = headers_from(DjangoCSPMiddleware, view, path)
    if view is uses_nonce:  # a new nonce per request: the same header around it
        nonce = re.compile(r"'nonce-[^']+'")
        assert "'nonce-" in str(ours) or policy_settings["CONTENT_SECURITY_POLICY"] is None
        ours = {name: value and nonce.sub("'nonce-…'", value) for name, value in ours.items()}
        theirs = {name: value and nonce.sub("'nonce-…'", value) for name, value in theirs.items()}
    assert ours == theirs


def test_the_plain_policy_is_built_once_and_again_when_the_setting_changes():
    middleware = CSPMiddleware(plain)
    with mock.patch("portal.csp_middleware.build_policy", wraps=csp_utils.build_policy) as build:
        with override_settings(CONTENT_SECURITY_POLICY=POLICY):
            first = {respond(middleware)["Content-Security-Policy"] for _ in range(3)}
            assert first == {csp_utils.build_policy()}
        assert build.call_count == 2  # the policy and the report-only one, once
        changed = {"DIRECTIVES": {"default-src": ["'none'"]}}
        with override_settings(CONTENT_SECURITY_POLICY=changed):
            second = respond(middleware)
    assert build.call_count == 4
    assert second["Content-Security-Policy"] == "default-src 'none'"


def test_a_nonce_asked_for_after_the_header_was_written_fails_loudly():
    request = RequestFactory().get("/")
    with override_settings(CONTENT_SECURITY_POLICY=POLICY):
        CSPMiddleware(plain)(request)
    with pytest.raises(CSPNonceError):
        str(cast(Any, request).csp_nonce)
