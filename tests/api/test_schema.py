"""The OpenAPI document, the docs page (no network, works under the CSP) and schemathesis."""

from __future__ import annotations

import json
import re

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from intents.services import json_holds_nul

from .conftest import make_key


def _wsgi_app_in_test_transaction():
    """Django's WSGI app, minus the per-request connection recycling.

    A real server closes stale connections around each request; inside a test that
    would close the connection holding the test's transaction (Django's own test client
    disconnects the same two receivers for the same reason).
    """
    handler = WSGIHandler()

    def app(environ, start_response):
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            response = handler(environ, start_response)
            body = b"".join(response)
            response.close()
            return [body]
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)

    return app


def test_schema_is_openapi_3_with_every_operation(anonymous):
    response = anonymous.get("/api/v1/schema", headers={"Accept": "application/json"})
    assert response.status_code == 200
    document = json.loads(response.content)
    assert document["openapi"].startswith("3.")
    operations = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "patch", "delete"}
    }
    assert operations == {
        ("/api/v1/intents", "post"),
        ("/api/v1/intents", "get"),
        ("/api/v1/intents/{public_id}", "get"),
        ("/api/v1/intents/{public_id}/attempts", "get"),
        ("/api/v1/intents/{public_id}/receipts", "get"),
        ("/api/v1/intents/{public_id}/cancel", "post"),
        ("/api/v1/targets", "get"),
        ("/api/v1/suppressions", "get"),
        ("/api/v1/suppressions/{channel}/{recipient}", "delete"),
        ("/api/v1/webhook-endpoints", "post"),
        ("/api/v1/webhook-endpoints", "get"),
        ("/api/v1/webhook-endpoints/{public_id}", "get"),
        ("/api/v1/webhook-endpoints/{public_id}", "patch"),
        ("/api/v1/webhook-endpoints/{public_id}", "delete"),
        ("/api/v1/webhook-endpoints/{public_id}/rotate-secret", "post"),
        ("/api/v1/webhook-endpoints/{public_id}/test", "post"),
        ("/api/v1/webhook-endpoints/{public_id}/deliveries", "get"),
    }
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key: `Authorization: Bearer <prefix>.<secret>`.",
    }


def test_every_operation_documents_its_problems_with_examples(anonymous):
    document = json.loads(
        anonymous.get("/api/v1/schema", headers={"Accept": "application/json"}).content
    )
    create = document["paths"]["/api/v1/intents"]["post"]
    documented = {
        example["value"]["code"]
        for status, spec in create["responses"].items()
        if status != "default"
        for example in spec.get("content", {})
        .get("application/problem+json", {})
        .get("examples", {})
        .values()
    }
    assert documented >= {
        "idempotency_key_reused",
        "idempotency_key_invalid",
        "invalid_request",
        "target_unknown",
        "contract_incompatible",
        "payload_invalid",
        "target_not_allowed",
        "scope_missing",
        "payload_too_large",
        "rate_limited",
        "quota_exceeded",
        "unauthenticated",
    }
    assert set(create["responses"]["201"]["headers"]) == {"X-Request-ID", "Location"}
    assert "Idempotent-Replayed" in create["responses"]["200"]["headers"]
    assert "Retry-After" in create["responses"]["429"]["headers"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            problem = operation["responses"]["default"]["content"]["application/problem+json"]
            assert problem["schema"] == {"$ref": "#/components/schemas/Problem"}, (path, method)
            assert "401" in operation["responses"], (path, method)


def test_docs_page_loads_its_assets_locally_under_the_csp(anonymous):
    response = anonymous.get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    csp = response["Content-Security-Policy"]
    assert (
        "script-src 'self'" in csp
        and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    )
    # No inline script (blocked by script-src 'self') and nothing from another origin.
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls and all(url.startswith("/") for url in urls), urls
    assert "http://" not in html and "https://" not in html
    script_url = next(url for url in urls if "script" in url and url.startswith("/api/"))
    script = anonymous.get(script_url.replace("&amp;", "&"))
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert '"validatorUrl": null' in script.content.decode()


def test_docs_page_assets_exist_in_the_installed_sidecar(anonymous):
    from django.contrib.staticfiles import finders

    html = anonymous.get("/api/v1/docs").content.decode()
    assets = re.findall(r'(?:src|href)="/static/([^"]+)"', html)
    assert assets, "the docs page references no local asset"
    for url in assets:
        assert finders.find(url), url


# Loaded at collection (the schema view touches no database). schemathesis' lazy
# from_fixture loader does not work with pytest 9 (it reads Function._nodeid).
# A schema-valid body can still name a target the registry does not hold (422) or
# carry a payload over the size limit (413): the registry is data, not schema.
CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "409", "413", "422", "429"]
            }
        }
    }
)
schema = schemathesis.openapi.from_wsgi(
    "/api/v1/schema", _wsgi_app_in_test_transaction(), config=CONFIG
)


@pytest.fixture
def bearer(tenant, targets):
    # Generous limits so that generated traffic never trips them (they have own tests).
    tenant.rate_limit_per_minute = 1_000_000
    tenant.save(update_fields=["rate_limit_per_minute"])
    return {"Authorization": f"Bearer {make_key(tenant)}"}


@schema.parametrize()
@settings(
    max_examples=20,
    derandomize=True,  # the same examples on every run: CI must not flake
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(case, bearer):
    """No 5xx, and every response (status, content type, headers, body) matches the schema."""
    # A cursor is opaque: only the ones in our own `next` links are valid, which no
    # schema can say, so generated "valid" cursors are left out (tests/api covers them).
    if case.query and case.meta and case.meta.generation.mode.is_positive:
        case.query.pop("cursor", None)
    # Likewise "no U+0000 anywhere in metadata" (jsonb cannot store it) has no JSON Schema
    # short of a recursive one; the field's description says it and tests/api tests it.
    if (
        isinstance(case.body, dict)
        and case.meta
        and case.meta.generation.mode.is_positive
        and json_holds_nul(case.body.get("metadata"))
    ):
        case.body["metadata"] = {}
    case.call_and_validate(headers=bearer)
