"""Development settings: what ``make run`` and ``manage.py`` use by default."""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = SECRET_KEY or "dev-only-not-secret-" + "x" * 40  # noqa: F405
AUDIT_HMAC_KEY = AUDIT_HMAC_KEY or "dev-only-audit-key"  # noqa: F405
ALLOWED_HOSTS = ALLOWED_HOSTS or ["127.0.0.1", "localhost", "[::1]", "testserver"]  # noqa: F405
LOG_JSON = env.bool("LOG_JSON", default=False)
