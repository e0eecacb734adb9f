"""Fixtures of the REST API tests: keys, an authenticated client, intents in any state."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from portal.accounts.models import ALL_SCOPES, ApiKey, Tenant

SMS_OTP_BODY = {
    "target": "sms.otp",
    "payload": {"to": "+15550100001", "text": "Your code is 123456"},
}


def make_key(tenant: Tenant, scopes: list[str] | None = None, **fields: Any) -> str:
    _, key = ApiKey.objects.create_key(
        name="test key", tenant=tenant, scopes=ALL_SCOPES if scopes is None else scopes, **fields
    )
    return key


class ApiClient:
    """Django's test client speaking the API: Bearer key, JSON bodies, Idempotency-Key."""

    def __init__(self, key: str | None) -> None:
        self.key = key
        self.client = Client()

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        result = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        result.update(headers or {})
        return result

    def get(self, path: str, *, headers: dict[str, str] | None = None, **params: Any) -> Any:
        return self.client.get(path, params, headers=self._headers(headers))

    def post(
        self,
        path: str,
        body: Any = None,
        *,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | str | None = None,
        content_type: str = "application/json",
    ) -> Any:
        headers = dict(headers or {})
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        data = raw if raw is not None else (b"" if body is None else json.dumps(body))
        return self.client.generic(
            "POST", path, data, content_type=content_type, headers=self._headers(headers)
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = self._headers(kwargs.pop("headers", None))
        return self.client.generic(method, path, headers=headers, **kwargs)


@pytest.fixture
def api_key(tenant: Tenant) -> str:
    return make_key(tenant)


@pytest.fixture
def api(api_key: str) -> ApiClient:
    return ApiClient(api_key)


@pytest.fixture
def other_api(other_tenant: Tenant) -> ApiClient:
    return ApiClient(make_key(other_tenant))


@pytest.fixture
def anonymous() -> ApiClient:
    return ApiClient(None)


@pytest.fixture
def client_with_scopes(tenant: Tenant) -> Callable[[list[str]], ApiClient]:
    return lambda scopes: ApiClient(make_key(tenant, scopes))


@pytest.fixture
def submit(api: ApiClient, targets: None) -> Callable[..., Any]:
    """POST /api/v1/intents for sms.otp (or ``body``) with a fresh or given key."""
    counter = iter(range(1, 1_000_000))

    def _submit(body: dict[str, Any] | None = None, *, key: str | None = None) -> Any:
        return api.post(
            "/api/v1/intents",
            SMS_OTP_BODY if body is None else body,
            idempotency_key=key or f"key-{next(counter)}",
        )

    return _submit


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with ``code`` (and the common fields)."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = json.loads(response.content)
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"] == f"https://docs.submission-portal.dev/problems/{code}"
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["request_id"] == response["X-Request-ID"]
    assert set(body) <= {"type", "title", "status", "code", "detail", "request_id", "errors"}
    return body
