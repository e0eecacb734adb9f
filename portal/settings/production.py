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

# The audit chain's and its head's signatures are only as strong as this key; the floor
# is Django's W009 for SECRET_KEY scaled to an HMAC-SHA256 key (32 bytes of entropy
# take 43 base64 or 64 hex characters; anything shorter or repetitive is refused).
AUDIT_HMAC_KEY_MIN_LENGTH = 32
AUDIT_HMAC_KEY_MIN_UNIQUE = 10
_audit_key = AUDIT_HMAC_KEY or ""  # noqa: F405  (refused above when missing)
if len(_audit_key) < AUDIT_HMAC_KEY_MIN_LENGTH or len(set(_audit_key)) < AUDIT_HMAC_KEY_MIN_UNIQUE:
    raise ImproperlyConfigured(
        f"AUDIT_HMAC_KEY is too weak: use at least {AUDIT_HMAC_KEY_MIN_LENGTH} random "
        f"characters with {AUDIT_HMAC_KEY_MIN_UNIQUE} or more distinct ones "
        "(e.g. `openssl rand -hex 32`)."
    )

# /metrics without a token would be served to every loopback client, and behind a
# same-host reverse proxy every client is one. Opting out is explicit.
METRICS_TOKEN_REQUIRED = env.bool("METRICS_TOKEN_REQUIRED", default=True)
if METRICS_TOKEN_REQUIRED and not METRICS_TOKEN:  # noqa: F405
    raise ImproperlyConfigured(
        "Production settings need METRICS_TOKEN (or METRICS_TOKEN_FILE) for /metrics; "
        "set METRICS_TOKEN_REQUIRED=false to serve it to loopback clients without one."
    )

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Probes and scrapers often speak plain HTTP to the process itself: answer, not 301.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
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
