"""Production settings: refuse to start without the values that have no safe default."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import env

_missing = [
    name
    for name, value in (
        ("SECRET_KEY", SECRET_KEY),  # noqa: F405
        ("ALLOWED_HOSTS", ALLOWED_HOSTS),  # noqa: F405
        ("AUDIT_HMAC_KEY", AUDIT_HMAC_KEY),  # noqa: F405
        ("DATABASE_URL", env.str("DATABASE_URL", default="")),
    )
    if not value
]
if _missing:
    raise ImproperlyConfigured(
        "Production settings need these environment variables (or <NAME>_FILE): "
        + ", ".join(_missing)
    )
if DEBUG:  # noqa: F405
    raise ImproperlyConfigured("DEBUG must be off in production settings.")

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# "__Host-" cookies: browsers accept them only over HTTPS, for this host, path "/".
SESSION_COOKIE_NAME = "__Host-sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken"
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
