"""``rate_per_second`` of a connection, shared by every worker on every machine.

A token bucket per connection holding at most one second's worth of calls (at least
one), refilled continuously. A batch asks for as many tokens as it has messages for the
connection and gets what the bucket holds; the rest are deferred, never charged as an
attempt, each told when its token will be there.

The bucket lives in the database (``ConnectionThrottle``, one row locked per grant), or
in Redis when ``REDIS_URL`` is set (one atomic Lua script per grant). Both take the time
from the caller, so every worker uses the same clock source: the database's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from .models import ConnectionThrottle


@dataclasses.dataclass(frozen=True, slots=True)
class Grant:
    granted: int
    tokens_left: float
    rate: float

    def wait_s(self, position: int) -> float:
        """Seconds until the token of the ``position``-th refused caller (0-based)."""
        return max(position + 1 - self.tokens_left, 0.0) / self.rate


def capacity(rate: float) -> float:
    return max(rate, 1.0)


def _refill(tokens: float, elapsed_s: float, rate: float) -> float:
    return min(capacity(rate), tokens + max(elapsed_s, 0.0) * rate)


def throttle_acquire(*, key: str, rate: float, wanted: int, now: dt.datetime) -> Grant:
    """Take up to ``wanted`` tokens from ``key``'s bucket."""
    if settings.REDIS_URL:
        return _redis_acquire(key=key, rate=rate, wanted=wanted, now=now)
    with transaction.atomic():
        bucket = _locked_bucket(key, rate, now)
        tokens = _refill(bucket.tokens, (now - bucket.refilled_at).total_seconds(), rate)
        granted = min(wanted, math.floor(tokens + 1e-9))
        bucket.tokens = tokens - granted
        bucket.refilled_at = max(now, bucket.refilled_at)
        bucket.save(update_fields=["tokens", "refilled_at"])
    return Grant(granted, bucket.tokens, rate)


def _locked_bucket(key: str, rate: float, now: dt.datetime) -> ConnectionThrottle:
    bucket = ConnectionThrottle.objects.select_for_update().filter(connection_key=key).first()
    if bucket is not None:
        return bucket
    try:
        with transaction.atomic():  # a savepoint: a concurrent first insert may win
            ConnectionThrottle.objects.create(
                connection_key=key, tokens=capacity(rate), refilled_at=now
            )
    except IntegrityError:
        pass  # another worker created it first
    return ConnectionThrottle.objects.select_for_update().get(connection_key=key)


# KEYS[1] the bucket; ARGV: now (s), rate, capacity, wanted. Returns {granted, tokens left}.
_ACQUIRE_LUA = """
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local now, rate, cap, wanted = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil then tokens, at = cap, now end
if now > at then tokens = math.min(cap, tokens + (now - at) * rate) else now = at end
local granted = math.min(wanted, math.floor(tokens + 1e-9))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return {granted, tostring(tokens)}
"""
REDIS_KEY_PREFIX = "portal:throttle:"


@functools.cache
def _redis_script(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url).register_script(_ACQUIRE_LUA)


def _redis_acquire(*, key: str, rate: float, wanted: int, now: dt.datetime) -> Grant:
    script = _redis_script(settings.REDIS_URL)
    granted, tokens = script(
        keys=[REDIS_KEY_PREFIX + key], args=[now.timestamp(), rate, capacity(rate), wanted]
    )
    return Grant(int(granted), float(tokens), rate)
