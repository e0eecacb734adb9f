"""``Authorization: Bearer <key>`` for the REST API.

A key is ``<prefix>.<secret>`` (djangorestframework-api-key): one indexed lookup by
prefix, then a SHA-512 comparison in constant time. A password hasher would cost
hundreds of milliseconds per request; a high-entropy key does not need one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

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

        api_key = api_key_verify(key)
        now = timezone.now()
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
        api_key = ApiKey.objects.select_related("tenant").get(prefix=prefix)
    except ApiKey.DoesNotExist:
        raise exceptions.AuthenticationFailed("Invalid API key.") from None
    if not api_key.is_valid(key):
        raise exceptions.AuthenticationFailed("Invalid API key.")
    return api_key


def touch_last_used(api_key: ApiKey, now: dt.datetime) -> None:
    """Record use at most once per LAST_USED_RESOLUTION, with one conditional UPDATE."""
    stale_before = now - LAST_USED_RESOLUTION
    if api_key.last_used_at is not None and api_key.last_used_at > stale_before:
        return
    ApiKey.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale_before), pk=api_key.pk
    ).update(last_used_at=now)
    api_key.last_used_at = now
