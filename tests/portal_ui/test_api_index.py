"""``/api/v1/`` lists the endpoints; a trailing slash gets a hint, as problem+json."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_api_root_lists_endpoints_and_the_docs():
    response = Client().get("/api/v1/")
    assert response.status_code == 200
    body = response.json()
    assert body["docs"].endswith("/api/v1/docs")
    assert {
        "method": "POST",
        "path": "/api/v1/intents",
        "does": body["endpoints"][1]["does"],
    } in body["endpoints"]


def test_a_trailing_slash_names_the_endpoint_without_it():
    response = Client().post("/api/v1/intents/", data={}, content_type="application/json")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "not_found"
    assert body["detail"].endswith("API paths have no trailing slash: /api/v1/intents")
    unknown = Client().get("/api/v1/nothing/").json()
    assert unknown["detail"] == "No API endpoint at /api/v1/nothing/."


def test_a_pattern_error_shows_the_pattern_as_the_schema_has_it():
    from intents.registry import payload_errors

    contract = {
        "schema": {
            "type": "object",
            "properties": {"to": {"type": "string", "pattern": r"^\+[1-9][0-9]{7,14}$"}},
        }
    }
    errors = payload_errors(contract, "test-checksum-pattern", {"to": "5550100001"})
    assert errors == [
        {
            "pointer": "/to",
            "message": r"'5550100001' does not match the pattern ^\+[1-9][0-9]{7,14}$",
        }
    ]
