"""``Authorization: Bearer <key>`` for the REST API.

A key is ``<prefix>.<secret>`` (djangorestframework-api-key): one indexed lookup by
prefix, then a SHA-512 comparison in constant time. A password hasher would cost
hundreds of milliseconds per request; a high-entropy key does not need one.

A verified key is then kept per process for ``API_KEY_CACHE_TTL_S`` (see
``VerifiedKeyCache``), so a busy client costs no lookup per request. The price: a key
revoked (or a tenant disabled or changed) in another process still works here for at
most that long. The process that saves the change forgets its cache at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from portal import clock

from .models import ApiKey, Tenant

# last_used_at is written at most this often per key, so a busy key costs no write
# per request.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
AUTH_SCHEME = "Bearer"
WWW_AUTHENTICATE = 'Bearer realm="api"'


@dataclass(frozen=True, slots=True)
class ApiClient:
    """``request.user`` for an API request: the tenant acting through one key."""

    tenant: Tenant
    api_key: ApiKey

    is_authenticated = True
    is_anonymous = False

    @property
    def pk(self) -> str:
        return self.api_key.prefix

    def __str__(self) -> str:
        return f"{self.tenant.name} via key {self.api_key.prefix}"


class ApiKeyAuthentication(BaseAuthentication):
    """Sets ``request.user`` (ApiClient), ``request.auth`` (ApiKey) and ``request.tenant``."""

    def authenticate(self, request: Any) -> tuple[ApiClient, ApiKey] | None:
        header = get_authorization_header(request).split()
        if not header:
            return None
        if header[0].lower() != AUTH_SCHEME.lower().encode():
            raise exceptions.AuthenticationFailed(
                "Use the Authorization header with the Bearer scheme: 'Bearer <api key>'."
            )
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header: expected 'Bearer <api key>'."
            )
        try:
            key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid API key.") from None

        now = clock.now()
        api_key = verified_keys.get(key, now)
        if api_key is None:
            api_key = api_key_verify(key)
            verified_keys.put(key, api_key, now)
        if api_key.revoked:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        if api_key.expiry_date is not None and api_key.expiry_date <= now:
            raise exceptions.AuthenticationFailed("This API key has expired.")
        if not api_key.tenant.is_active:
            raise exceptions.AuthenticationFailed("The tenant of this API key is disabled.")

        touch_last_used(api_key, now)
        request.tenant = api_key.tenant
        # The Django request too, so middleware and logging see the tenant.
        django_request = getattr(request, "_request", None)
        if django_request is not None:
            django_request.tenant = api_key.tenant
        return ApiClient(tenant=api_key.tenant, api_key=api_key), api_key

    def authenticate_header(self, request: Any) -> str:
        return WWW_AUTHENTICATE


def api_key_verify(key: str) -> ApiKey:
    """The key whose prefix and hash match ``key`` (revoked or not), else 401."""
    prefix, dot, secret = key.partition(".")
    if not (prefix and dot and secret):
        raise exceptions.AuthenticationFailed("Invalid API key.")
    try:
        api_key: ApiKey = ApiKey.objects.select_related("tenant").get(prefix=prefix)
    except ApiKey.DoesNotExist:
        raise exceptions.AuthenticationFailed("Invalid API key.") from None
    if not api_key.is_valid(key):
        raise exceptions.AuthenticationFailed("Invalid API key.")
    return api_key


# --- Verified keys, per process --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Verified:
    api_key: ApiKey  # with its tenant loaded
    verified_at: dt.datetime


class VerifiedKeyCache:
    """Keys that passed ``api_key_verify`` in this process, for ``ttl`` each.

    Entries are found by the SHA-256 of the whole presented key, so only the exact key
    that was verified finds one (a wrong secret with a known prefix misses and is
    checked against the database), and no plain key is held. An entry older than the
    TTL is dropped and the key verified again, so a revocation, an expiry date moved
    earlier, a disabled tenant or a changed tenant limit made in another process takes
    effect here within the TTL. A save or delete of any ApiKey or Tenant in this process
    empties the cache at once (``_key_or_tenant_changed``). The cache holds what the
    checks in ``authenticate`` read, so revoked, expired and disabled are still refused
    from it: an entry cannot outlive its key's own expiry date.
    """

    MAX_ENTRIES = 10_000  # a client cycling through many keys cannot grow it unbounded

    def __init__(self) -> None:
        self._entries: dict[bytes, _Verified] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _ttl() -> dt.timedelta:
        return dt.timedelta(seconds=settings.API_KEY_CACHE_TTL_S)

    @staticmethod
    def _digest(key: str) -> bytes:
        return hashlib.sha256(key.encode()).digest()

    def get(self, key: str, now: dt.datetime) -> ApiKey | None:
        entry = self._entries.get(self._digest(key))
        if entry is None:
            return None
        if not entry.verified_at <= now < entry.verified_at + self._ttl():
            return None
        return entry.api_key

    def put(self, key: str, api_key: ApiKey, now: dt.datetime) -> None:
        if settings.API_KEY_CACHE_TTL_S <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[self._digest(key)] = _Verified(api_key=api_key, verified_at=now)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


verified_keys = VerifiedKeyCache()


def _key_or_tenant_changed(**_: object) -> None:
    verified_keys.clear()


for _model in (ApiKey, Tenant):
    for _signal, _name in ((post_save, "saved"), (post_delete, "deleted")):
        _signal.connect(
            _key_or_tenant_changed,
            sender=_model,
            dispatch_uid=f"verified-keys-{_model.__name__}-{_name}",
        )


def touch_last_used(api_key: ApiKey, now: dt.datetime) -> None:
    """Record use at most once per LAST_USED_RESOLUTION, with one conditional UPDATE."""
    stale_before = now - LAST_USED_RESOLUTION
    if api_key.last_used_at is not None and api_key.last_used_at > stale_before:
        return
    ApiKey.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale_before), pk=api_key.pk
    ).update(last_used_at=now)
    api_key.last_used_at = now
