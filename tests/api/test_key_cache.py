"""Verified API keys are cached per process; revocation still takes effect within the TTL.

"Another process" is simulated with a queryset ``update()``, which sends no signal, as
a change saved by another web process sends none here. Time is moved with
time-machine (the cache reads ``portal.clock.now``), never slept.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.accounts.models import ApiKey, Tenant
from portal.accounts.services import api_key_revoke
from portal.audit.services import Actor

from .conftest import ApiClient, assert_problem, make_key

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)
TTL_S = 5.0


@pytest.fixture(autouse=True)
def _ttl(settings):
    settings.API_KEY_CACHE_TTL_S = TTL_S


def _key_queries(client: ApiClient) -> int:
    """Statements reading accounts_apikey for one authenticated GET."""
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/api/v1/targets").status_code == 200
    return sum('FROM "accounts_apikey"' in q["sql"] for q in captured.captured_queries)


def test_a_verified_key_is_not_read_again_within_the_ttl(tenant, targets):
    client = ApiClient(make_key(tenant))
    with time_machine.travel(T0, tick=False) as traveller:
        assert _key_queries(client) == 1
        traveller.shift(TTL_S - 0.1)
        assert _key_queries(client) == 0
        traveller.shift(0.1)  # the TTL is over: verified again
        assert _key_queries(client) == 1


def test_a_key_revoked_elsewhere_is_refused_once_the_ttl_is_over(tenant, targets):
    client = ApiClient(make_key(tenant))
    with time_machine.travel(T0, tick=False) as traveller:
        assert client.get("/api/v1/targets").status_code == 200
        ApiKey.objects.update(revoked=True)  # another process: no signal reaches this one
        traveller.shift(TTL_S - 0.1)
        assert client.get("/api/v1/targets").status_code == 200  # the stated bound
        traveller.shift(0.1)
        body = assert_problem(client.get("/api/v1/targets"), 401, "unauthenticated")
    assert "revoked" in body["detail"]


def test_a_key_revoked_in_this_process_is_refused_at_once(tenant, targets):
    key = make_key(tenant)
    client = ApiClient(key)
    with time_machine.travel(T0, tick=False):
        assert client.get("/api/v1/targets").status_code == 200
        api_key = ApiKey.objects.get(prefix=key.partition(".")[0])
        api_key_revoke(api_key=api_key, actor=Actor.system("tests"))
        assert_problem(client.get("/api/v1/targets"), 401, "unauthenticated")


def test_a_tenant_disabled_elsewhere_is_refused_once_the_ttl_is_over(tenant, targets):
    client = ApiClient(make_key(tenant))
    with time_machine.travel(T0, tick=False) as traveller:
        assert client.get("/api/v1/targets").status_code == 200
        Tenant.objects.update(is_active=False)
        traveller.shift(TTL_S)
        body = assert_problem(client.get("/api/v1/targets"), 401, "unauthenticated")
    assert "disabled" in body["detail"]


def test_a_wrong_secret_never_matches_a_cached_key(tenant, targets):
    key = make_key(tenant)
    prefix, _, secret = key.partition(".")
    assert ApiClient(key).get("/api/v1/targets").status_code == 200
    forged = ApiClient(f"{prefix}.{'x' * len(secret)}")
    assert_problem(forged.get("/api/v1/targets"), 401, "unauthenticated")


def test_a_cached_key_still_expires_at_its_expiry_date(tenant, targets):
    client = ApiClient(make_key(tenant, expiry_date=T0))
    with time_machine.travel(T0 - dt.timedelta(seconds=1), tick=False) as traveller:
        assert client.get("/api/v1/targets").status_code == 200
        traveller.shift(1)  # within the TTL, but at the key's expiry
        body = assert_problem(client.get("/api/v1/targets"), 401, "unauthenticated")
    assert "expired" in body["detail"]


def test_a_ttl_of_zero_verifies_every_request(tenant, targets, settings):
    settings.API_KEY_CACHE_TTL_S = 0
    client = ApiClient(make_key(tenant))
    assert _key_queries(client) == 1
    assert _key_queries(client) == 1
