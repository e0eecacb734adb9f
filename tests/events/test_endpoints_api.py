"""The webhook endpoints API: scopes, tenant isolation, validation as problem+json,
secrets shown once, the test event and the deliveries list."""

from __future__ import annotations

import json

import pytest
from standardwebhooks import Webhook

from intents.dispatch import run_once
from portal.audit.models import AuditEvent
from portal.events.models import WebhookEndpoint
from tests.api.conftest import ApiClient, assert_problem, make_key

pytestmark = pytest.mark.django_db

BASE = "/api/v1/webhook-endpoints"


def body(response) -> dict:
    return json.loads(response.content)


def patch(api: ApiClient, path: str, data: object):
    return api.request("PATCH", path, data=json.dumps(data), content_type="application/json")


def test_create_shows_the_secret_once(hooks_api, webhook_settings, receiver):
    response = hooks_api.post(
        BASE, {"url": receiver.url, "event_types": ["intent.failed"], "description": "ops"}
    )
    assert response.status_code == 201
    created = body(response)
    assert created["secret"].startswith("whsec_")
    assert response["Location"].endswith(f"{BASE}/{created['id']}")
    assert created["event_types"] == ["intent.failed"]
    assert created["status"] == "enabled"
    shown = body(hooks_api.get(f"{BASE}/{created['id']}"))
    assert "secret" not in shown
    assert shown == {k: v for k, v in created.items() if k != "secret"}
    listed = body(hooks_api.get(BASE))
    assert [row["id"] for row in listed["results"]] == [created["id"]]
    assert listed["next"] is None
    # Kept sealed: the value is nowhere in the row or the audit trail.
    row = WebhookEndpoint.objects.get()
    assert created["secret"] not in row.secret_sealed
    audit = AuditEvent.objects.get(action="webhook_endpoint.created")
    assert created["secret"] not in json.dumps(audit.data)


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("get", BASE, "webhooks:read"),
        ("post", BASE, "webhooks:write"),
    ],
)
def test_scopes(tenant, method, path, scope, webhook_settings, receiver):
    other_scope = "webhooks:write" if scope == "webhooks:read" else "webhooks:read"
    lacking = ApiClient(make_key(tenant, ["intents:read", other_scope]))
    call = getattr(lacking, method)
    response = call(path, {"url": receiver.url}) if method == "post" else call(path)
    assert_problem(response, 403, "scope_missing")


def test_read_scope_cannot_change_an_endpoint(tenant, make_endpoint):
    endpoint = make_endpoint()
    reader = ApiClient(make_key(tenant, ["webhooks:read"]))
    assert reader.get(f"{BASE}/{endpoint['id']}").status_code == 200
    assert_problem(
        patch(reader, f"{BASE}/{endpoint['id']}", {"description": "x"}), 403, "scope_missing"
    )
    assert_problem(reader.post(f"{BASE}/{endpoint['id']}/rotate-secret"), 403, "scope_missing")
    assert_problem(reader.post(f"{BASE}/{endpoint['id']}/test"), 403, "scope_missing")
    assert_problem(reader.request("DELETE", f"{BASE}/{endpoint['id']}"), 403, "scope_missing")


def test_another_tenants_endpoint_is_not_found(other_tenant, make_endpoint):
    endpoint = make_endpoint()
    other = ApiClient(make_key(other_tenant))
    for response in (
        other.get(f"{BASE}/{endpoint['id']}"),
        patch(other, f"{BASE}/{endpoint['id']}", {"description": "mine"}),
        other.post(f"{BASE}/{endpoint['id']}/rotate-secret"),
        other.get(f"{BASE}/{endpoint['id']}/deliveries"),
        other.request("DELETE", f"{BASE}/{endpoint['id']}"),
    ):
        assert_problem(response, 404, "not_found")
    assert body(other.get(BASE))["results"] == []


@pytest.mark.parametrize(
    ("payload", "pointer"),
    [
        ({}, "/url"),
        ({"url": "not a url"}, "/url"),
        ({"url": "ftp://example.com/x"}, "/url"),
        ({"url": "https://user:pw@example.com/x"}, "/url"),
        ({"url": "https://example.com/x", "event_types": ["intent.nope"]}, "/event_types/0"),
        ({"url": "https://example.com/x", "event_types": "intent.failed"}, "/event_types"),
        ({"url": "https://example.com/x", "description": "x" * 501}, "/description"),
    ],
)
def test_bad_input_is_a_problem_with_pointers(hooks_api, payload, pointer):
    problem = assert_problem(hooks_api.post(BASE, payload), 400, "invalid_request")
    assert pointer in [error["pointer"] for error in problem["errors"]]
    assert not WebhookEndpoint.objects.exists()


def test_http_is_refused_with_debug_off(hooks_api, settings):
    settings.DEBUG = False
    problem = assert_problem(
        hooks_api.post(BASE, {"url": "http://example.com/hooks"}), 400, "invalid_request"
    )
    [error] = problem["errors"]
    assert error["pointer"] == "/url" and "https" in error["message"]
    assert hooks_api.post(BASE, {"url": "https://example.com/hooks"}).status_code == 201


def test_patch_changes_and_refuses_unknown_fields(hooks_api, make_endpoint):
    endpoint = make_endpoint()
    path = f"{BASE}/{endpoint['id']}"
    changed = body(patch(hooks_api, path, {"event_types": ["intent.accepted"], "description": "d"}))
    assert changed["event_types"] == ["intent.accepted"] and changed["description"] == "d"
    disabled = body(patch(hooks_api, path, {"status": "disabled"}))
    assert disabled["status"] == "disabled" and disabled["disabled_reason"] == "client"
    enabled = body(patch(hooks_api, path, {"status": "enabled"}))
    assert enabled["status"] == "enabled" and enabled["disabled_at"] is None
    problem = assert_problem(patch(hooks_api, path, {"secret": "whsec_x"}), 400, "invalid_request")
    assert problem["errors"][0]["pointer"] == "/secret"
    assert_problem(patch(hooks_api, path, {"status": "paused"}), 400, "invalid_request")


def test_delete_cancels_the_deliveries_not_yet_made(frozen_clock, hooks_api, make_endpoint):
    from intents.models import Intent

    endpoint = make_endpoint()
    hooks_api.post(f"{BASE}/{endpoint['id']}/test")
    assert hooks_api.request("DELETE", f"{BASE}/{endpoint['id']}").status_code == 204
    assert_problem(hooks_api.get(f"{BASE}/{endpoint['id']}"), 404, "not_found")
    assert Intent.objects.get(internal=True).status == "cancelled"
    assert run_once() == 0


def test_test_event_and_the_deliveries_list(frozen_clock, hooks_api, make_endpoint, receiver):
    endpoint = make_endpoint()
    response = hooks_api.post(f"{BASE}/{endpoint['id']}/test")
    assert response.status_code == 202
    queued = body(response)
    assert queued["type"] == "webhook.test" and queued["status"] == "pending"
    run_once()
    [request] = receiver.received
    event = Webhook(endpoint["secret"]).verify(request.body, request.headers)
    assert event["type"] == "webhook.test"
    assert event["data"]["endpoint_id"] == endpoint["id"]
    assert request.headers["webhook-id"] == queued["event_id"]
    [delivery] = body(hooks_api.get(f"{BASE}/{endpoint['id']}/deliveries"))["results"]
    assert delivery == {
        "event_id": queued["event_id"],
        "type": "webhook.test",
        "status": "delivered",
        "attempts": 1,
        "last_status_code": 200,
        "created_at": "2026-01-05T12:00:00Z",
        "finished_at": "2026-01-05T12:00:00Z",
    }


def test_deliveries_are_cursor_paginated(frozen_clock, hooks_api, make_endpoint):
    endpoint = make_endpoint()
    ids = []
    for _ in range(3):
        ids.append(body(hooks_api.post(f"{BASE}/{endpoint['id']}/test"))["event_id"])
        frozen_clock.advance(1)
    page = body(hooks_api.get(f"{BASE}/{endpoint['id']}/deliveries", limit=2))
    assert [d["event_id"] for d in page["results"]] == ids[:0:-1]
    rest = body(hooks_api.client.get(page["next"], headers=hooks_api._headers(None)))
    assert [d["event_id"] for d in rest["results"]] == ids[:1]
    assert rest["next"] is None
    problem = assert_problem(
        hooks_api.get(f"{BASE}/{endpoint['id']}/deliveries", cursor="nope"), 400, "invalid_request"
    )
    assert problem["errors"][0]["parameter"] == "cursor"
