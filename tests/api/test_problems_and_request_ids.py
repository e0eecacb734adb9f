"""X-Request-ID on every response, problem+json for everything that goes wrong, never HTML."""

from __future__ import annotations

import json
from unittest import mock

import pytest

from .conftest import SMS_OTP_BODY, ApiClient, assert_problem

UNKNOWN_ID = "0b7e5bd4-54a5-4bd6-9d43-8bd3e0a5f0a1"


def _responses(api: ApiClient, anonymous: ApiClient, headers: dict[str, str]):
    """One response of every kind: success, replay, each error family, unknown URL."""
    yield api.post("/api/v1/intents", SMS_OTP_BODY, idempotency_key="k1", headers=headers)
    yield api.post("/api/v1/intents", SMS_OTP_BODY, idempotency_key="k1", headers=headers)
    yield api.post("/api/v1/intents", SMS_OTP_BODY, headers=headers)
    yield api.get("/api/v1/intents", headers=headers)
    yield api.get(f"/api/v1/intents/{UNKNOWN_ID}", headers=headers)
    yield api.get(f"/api/v1/intents/{UNKNOWN_ID}/attempts", headers=headers)
    yield api.post(f"/api/v1/intents/{UNKNOWN_ID}/cancel", headers=headers)
    yield api.get("/api/v1/targets", headers=headers)
    yield api.get("/api/v1/nothing-here", headers=headers)
    yield api.request("DELETE", "/api/v1/intents", headers=headers)
    yield anonymous.get("/api/v1/intents", headers=headers)
    yield anonymous.get("/api/v1/schema", headers=headers)
    yield anonymous.get("/api/v1/docs", headers=headers)


def test_every_response_carries_a_fresh_request_id(api, anonymous, targets):
    seen = set()
    for response in _responses(api, anonymous, {}):
        request_id = response["X-Request-ID"]
        assert request_id and request_id not in seen
        seen.add(request_id)
        if response["Content-Type"] == "application/problem+json":
            assert json.loads(response.content)["request_id"] == request_id


def test_client_request_id_is_echoed_on_every_response(api, anonymous, targets):
    for n, response in enumerate(_responses(api, anonymous, {"X-Request-ID": "client-id-1"})):
        assert response["X-Request-ID"] == "client-id-1", n
        if response["Content-Type"] == "application/problem+json":
            assert json.loads(response.content)["request_id"] == "client-id-1"


def test_insane_client_request_id_is_replaced(api, targets):
    response = api.get("/api/v1/intents", headers={"X-Request-ID": "<script>" + "x" * 100})
    assert response.status_code == 200
    assert response["X-Request-ID"] != "<script>" + "x" * 100
    assert len(response["X-Request-ID"]) == 32


def test_unknown_api_url_is_a_404_problem_for_any_method(api, anonymous):
    assert_problem(api.get("/api/v1/nothing-here"), 404, "not_found")
    assert_problem(anonymous.request("PUT", "/api/v2/intents"), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/api/v1/intents", "GET, POST"),
        ("PUT", "/api/v1/intents", "GET, POST"),
        ("DELETE", f"/api/v1/intents/{UNKNOWN_ID}", "GET, HEAD"),
        ("GET", f"/api/v1/intents/{UNKNOWN_ID}/cancel", "POST"),
        ("POST", "/api/v1/targets", "GET, HEAD"),
    ],
)
def test_wrong_method_is_a_405_problem_with_allow(api, targets, method, path, allow):
    response = api.request(method, path)
    assert_problem(response, 405, "method_not_allowed")
    assert {m.strip() for m in response["Allow"].split(",")} == set(allow.split(", "))


def _server_error_client(api: ApiClient) -> ApiClient:
    api.client.raise_request_exception = False
    return api


@pytest.mark.parametrize(
    ("selector", "method", "path"),
    [
        ("intent_list_for_tenant", "GET", "/api/v1/intents"),
        ("intent_get_for_tenant", "GET", f"/api/v1/intents/{UNKNOWN_ID}"),
        ("targets_for_tenant", "GET", "/api/v1/targets"),
    ],
)
def test_unexpected_error_is_a_500_problem_with_only_the_request_id(
    api, targets, selector, method, path
):
    client = _server_error_client(api)
    secret = "secret-connection-string password=hunter2"
    with mock.patch(f"intents.api.{selector}", side_effect=RuntimeError(secret)):
        response = client.request(method, path, headers={"X-Request-ID": "trace-500"})
    body = assert_problem(response, 500, "internal_error")
    assert body["request_id"] == "trace-500"
    assert "hunter2" not in response.content.decode()
    assert "RuntimeError" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert "<html" not in response.content.decode().lower()
    assert "errors" not in body


def test_unexpected_error_while_submitting_rolls_back_and_is_a_500_problem(api, targets):
    from intents.models import Intent

    client = _server_error_client(api)
    with mock.patch(
        "intents.services.INTENTS_CREATED.labels", side_effect=RuntimeError("metrics down")
    ):
        response = client.post("/api/v1/intents", SMS_OTP_BODY, idempotency_key="k1")
    assert_problem(response, 500, "internal_error")
    assert "metrics down" not in response.content.decode()
    # The retry the 500's detail recommends is safe: it creates or replays one intent.
    retry = api.post("/api/v1/intents", SMS_OTP_BODY, idempotency_key="k1")
    assert retry.status_code in {200, 201}
    assert Intent.objects.count() == 1


def test_errors_are_json_even_when_the_client_asks_for_html(api, targets):
    response = api.get(f"/api/v1/intents/{UNKNOWN_ID}", headers={"Accept": "text/html"})
    assert response.status_code in {404, 406}
    assert response["Content-Type"] == "application/problem+json"
    assert json.loads(response.content)["request_id"] == response["X-Request-ID"]


def test_error_outside_the_api_view_is_still_a_500_problem(api, targets):
    """Rendering runs after the view returned, beyond DRF's exception handler."""
    client = _server_error_client(api)
    with mock.patch(
        "rest_framework.renderers.JSONRenderer.render", side_effect=RuntimeError("boom")
    ):
        response = client.get("/api/v1/targets", headers={"X-Request-ID": "late-500"})
    body = assert_problem(response, 500, "internal_error")
    assert body["request_id"] == "late-500"
    assert "boom" not in response.content.decode()


def test_head_answers_like_get_without_a_body(api, submit):
    submit()
    for path in ("/api/v1/intents", "/api/v1/targets"):
        response = api.request("HEAD", path)
        assert response.status_code == 200, path
        assert response.content == b""
        assert response["X-Request-ID"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/nope"),  # the /api/ fallback (plain Django)
        ("get", "/api/v1/intents/"),  # the trailing-slash hint (plain Django)
        ("put", "/api/v1/intents"),  # the method router's 405
        ("get", "/api/v1/targets"),  # DRF, without a key
    ],
)
def test_every_problem_path_renders_one_json_format(anonymous, method, path):
    """Fallback, hint, 405 and DRF problems: the same compact UTF-8 JSON, byte for byte."""
    response = (
        getattr(anonymous, method)(path)
        if method == "get"
        else anonymous.request(method.upper(), path)
    )
    body = json.loads(response.content)
    assert response["Content-Type"].startswith("application/problem+json")
    compact = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    assert response.content == compact
