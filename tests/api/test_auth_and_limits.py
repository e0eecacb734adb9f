"""401 for every way a key can be wrong, 403 per scope, 429 for rate and open-intent quota."""

from __future__ import annotations

import datetime as dt
import json
from unittest import mock

import pytest
import time_machine

from intents.models import ApiRateWindow, Intent
from portal.accounts.models import ApiKey

from .conftest import SMS_OTP_BODY, ApiClient, assert_problem, make_key

EVERY_OPERATION = [
    ("POST", "/api/v1/intents"),
    ("GET", "/api/v1/intents"),
    ("GET", "/api/v1/intents/0b7e5bd4-54a5-4bd6-9d43-8bd3e0a5f0a1"),
    ("GET", "/api/v1/intents/0b7e5bd4-54a5-4bd6-9d43-8bd3e0a5f0a1/attempts"),
    ("POST", "/api/v1/intents/0b7e5bd4-54a5-4bd6-9d43-8bd3e0a5f0a1/cancel"),
    ("GET", "/api/v1/targets"),
]


def _call(client: ApiClient, method: str, path: str):
    if method == "POST":
        return client.post(path, SMS_OTP_BODY, idempotency_key="k1")
    return client.get(path)


@pytest.mark.parametrize(("method", "path"), EVERY_OPERATION)
def test_no_key_is_401_on_every_operation(anonymous, targets, method, path):
    response = _call(anonymous, method, path)
    body = assert_problem(response, 401, "unauthenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert "errors" not in body


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer nonsense",
        "Bearer abc.def",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer a b",
    ],
    ids=["no-dot", "unknown-prefix", "basic-scheme", "no-key", "extra-part"],
)
def test_malformed_or_unknown_key_is_401(tenant, targets, authorization):
    client = ApiClient(None)
    response = client.get("/api/v1/intents", headers={"Authorization": authorization})
    assert_problem(response, 401, "unauthenticated")


def test_right_prefix_with_a_wrong_secret_is_401(api_key, targets):
    prefix, _, secret = api_key.partition(".")
    forged = f"{prefix}.{'x' * len(secret)}"
    response = ApiClient(forged).get("/api/v1/intents")
    body = assert_problem(response, 401, "unauthenticated")
    assert body["detail"] == "Invalid API key."


def test_revoked_key_is_401(tenant, targets):
    key = make_key(tenant)
    ApiKey.objects.update(revoked=True)
    body = assert_problem(ApiClient(key).get("/api/v1/intents"), 401, "unauthenticated")
    assert "revoked" in body["detail"]


def test_expired_key_is_401_from_its_expiry_on(tenant, targets):
    expiry = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)
    key = make_key(tenant, expiry_date=expiry)
    client = ApiClient(key)
    with time_machine.travel(expiry - dt.timedelta(seconds=1), tick=False):
        assert client.get("/api/v1/intents").status_code == 200
    with time_machine.travel(expiry, tick=False):
        body = assert_problem(client.get("/api/v1/intents"), 401, "unauthenticated")
    assert "expired" in body["detail"]


def test_key_of_a_disabled_tenant_is_401(tenant, api, targets):
    tenant.is_active = False
    tenant.save(update_fields=["is_active"])
    assert_problem(api.get("/api/v1/intents"), 401, "unauthenticated")


def test_successful_use_records_last_used(api, api_key, targets):
    with time_machine.travel(dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC), tick=False):
        api.get("/api/v1/intents")
    assert ApiKey.objects.get().last_used_at == dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("POST", "/api/v1/intents", "intents:write"),
        ("GET", "/api/v1/intents", "intents:read"),
        ("GET", "/api/v1/intents/0b7e5bd4-54a5-4bd6-9d43-8bd3e0a5f0a1", "intents:read"),
        ("GET", "/api/v1/intents/0b7e5bd4-54a5-4bd6-9d43-8bd3e0a5f0a1/attempts", "intents:read"),
        (
            "POST",
            "/api/v1/intents/0b7e5bd4-54a5-4bd6-9d43-8bd3e0a5f0a1/cancel",
            "intents:cancel",
        ),
        ("GET", "/api/v1/targets", "targets:read"),
    ],
)
def test_each_operation_needs_its_scope(client_with_scopes, targets, method, path, scope):
    all_scopes = {"intents:write", "intents:read", "intents:cancel", "targets:read"}
    lacking = client_with_scopes(sorted(all_scopes - {scope}))
    body = assert_problem(_call(lacking, method, path), 403, "scope_missing")
    assert scope in body["detail"]
    # With only that scope the scope check passes (the id is unknown: 404, not 403).
    holding = client_with_scopes([scope])
    assert _call(holding, method, path).status_code in {200, 201, 404}


@time_machine.travel(dt.datetime(2026, 1, 5, 12, 0, 15, tzinfo=dt.UTC), tick=False)
def test_request_rate_over_the_limit_is_429_with_retry_after(tenant, submit):
    tenant.rate_limit_per_minute = 2
    tenant.save(update_fields=["rate_limit_per_minute"])
    assert submit().status_code == 201
    assert submit().status_code == 201

    response = submit()
    body = assert_problem(response, 429, "rate_limited")
    assert response["Retry-After"] == "45"  # the window ends at 12:01:00
    assert "errors" not in body
    assert Intent.objects.count() == 2


@time_machine.travel(dt.datetime(2026, 1, 5, 12, 0, 15, tzinfo=dt.UTC), tick=False)
def test_refused_submits_count_against_the_rate_and_retries_too(tenant, submit):
    """A 422 and a replayed retry are counted like a created intent; the 429 stores nothing."""
    tenant.rate_limit_per_minute = 3
    tenant.save(update_fields=["rate_limit_per_minute"])
    unknown = {**SMS_OTP_BODY, "target": "no.such.target"}
    assert_problem(submit(unknown), 422, "target_unknown")
    assert submit(key="once").status_code == 201
    assert submit(key="once").status_code == 200  # the retry is counted too

    refused = submit(key="over")
    assert_problem(refused, 429, "rate_limited")
    assert not Intent.objects.filter(idempotency_key="over").exists()  # its INSERT undone
    assert ApiRateWindow.objects.get().count == 3


def test_rate_window_reopens_after_a_minute(tenant, submit):
    tenant.rate_limit_per_minute = 1
    tenant.save(update_fields=["rate_limit_per_minute"])
    with time_machine.travel(dt.datetime(2026, 1, 5, 12, 0, 59, tzinfo=dt.UTC), tick=False):
        assert submit().status_code == 201
        refused = submit()
        assert_problem(refused, 429, "rate_limited")
        assert refused["Retry-After"] == "1"
    with time_machine.travel(dt.datetime(2026, 1, 5, 12, 1, 0, tzinfo=dt.UTC), tick=False):
        assert submit().status_code == 201
    # The previous window is kept (the quota estimate reads it back), older ones are
    # dropped when a new one opens.
    assert ApiRateWindow.objects.count() == 2
    with time_machine.travel(dt.datetime(2026, 1, 5, 12, 2, 0, tzinfo=dt.UTC), tick=False):
        assert submit().status_code == 201
    assert sorted(w.window_start.minute for w in ApiRateWindow.objects.all()) == [1, 2]


def test_rate_limit_is_per_tenant(tenant, submit, other_api):
    tenant.rate_limit_per_minute = 1
    tenant.save(update_fields=["rate_limit_per_minute"])
    with time_machine.travel(dt.datetime(2026, 1, 5, 12, 0, 0, tzinfo=dt.UTC), tick=False):
        assert submit().status_code == 201
        assert_problem(submit(), 429, "rate_limited")
        other = other_api.post("/api/v1/intents", SMS_OTP_BODY, idempotency_key="k")
        assert other.status_code == 201


def test_reads_are_not_counted_against_the_submission_rate(tenant, api, submit):
    tenant.rate_limit_per_minute = 1
    tenant.save(update_fields=["rate_limit_per_minute"])
    with time_machine.travel(dt.datetime(2026, 1, 5, 12, 0, 0, tzinfo=dt.UTC), tick=False):
        for _ in range(3):
            assert api.get("/api/v1/intents").status_code == 200
        assert submit().status_code == 201


def test_open_intent_quota_is_429_with_retry_after(tenant, api, submit):
    tenant.max_open_intents = 2
    tenant.save(update_fields=["max_open_intents"])
    first = json.loads(submit().content)
    assert submit().status_code == 201

    response = submit()
    body = assert_problem(response, 429, "quota_exceeded")
    assert int(response["Retry-After"]) >= 1
    assert "2" in body["detail"]

    # A finished intent no longer counts.
    assert api.post(f"/api/v1/intents/{first['id']}/cancel").status_code == 200
    assert submit().status_code == 201


def test_replay_of_an_existing_key_is_answered_even_at_the_quota(tenant, submit):
    tenant.max_open_intents = 1
    tenant.save(update_fields=["max_open_intents"])
    assert submit(key="k1").status_code == 201
    assert submit(key="k1").status_code == 200


def test_a_window_opened_concurrently_still_admits_below_the_limit(tenant):
    """The first UPDATE finds no row; another process opens the window before we look."""
    from intents import rate_window

    real_increment = rate_window._increment_below_limit
    now = dt.datetime(2026, 1, 5, 12, 0, 30, tzinfo=dt.UTC)
    calls = []

    def racing_increment(tenant_, start, limit):
        calls.append(start)
        if len(calls) == 1:  # the other process wins the race to open the window
            ApiRateWindow.objects.create(tenant=tenant_, window_start=start, count=1)
            return None
        return real_increment(tenant_, start, limit)

    with mock.patch.object(rate_window, "_increment_below_limit", racing_increment):
        decision = rate_window.rate_window_hit(tenant=tenant, limit=5, now=now)
    assert decision.allowed
    assert ApiRateWindow.objects.get().count == 2
    # A window that really is full still refuses, with the time left in it.
    ApiRateWindow.objects.update(count=5)
    refused = rate_window.rate_window_hit(tenant=tenant, limit=5, now=now)
    assert not refused.allowed
    assert refused.retry_after_s == 30
