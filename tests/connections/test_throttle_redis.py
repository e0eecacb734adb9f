"""With REDIS_URL set, the throttle lives in Redis: one atomic script per grant."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from gateways.models import ConnectionThrottle
from gateways.throttle import throttle_acquire

from .test_shared_state_concurrency import in_threads

REDIS_URL = "redis://127.0.0.1:6379/13"
NOW = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def redis_throttle(settings):
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip(f"needs a Redis server at {REDIS_URL}")
    settings.REDIS_URL = REDIS_URL
    key = f"test-{uuid.uuid4().hex}"
    yield key
    client.delete(f"portal:throttle:{key}")


@pytest.mark.django_db
def test_a_rate_holds_across_concurrent_callers_in_redis(redis_throttle) -> None:
    key = redis_throttle
    grants = in_threads(4, lambda _: throttle_acquire(key=key, rate=5, wanted=10, now=NOW))
    assert sum(g.granted for g in grants) == 5
    assert not ConnectionThrottle.objects.exists()  # nothing in the database
    half = NOW + dt.timedelta(seconds=0.5)
    assert throttle_acquire(key=key, rate=5, wanted=10, now=half).granted == 2
    # A worker whose clock lags cannot take tokens back from the future.
    assert throttle_acquire(key=key, rate=5, wanted=10, now=NOW).granted == 0
