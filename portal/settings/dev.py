"""Development settings: what ``make run`` and ``manage.py`` use by default.

With ``DEBUG`` on (the default here) the secrets and hosts get development values. With
``DEBUG=0`` nothing is invented: the values production needs must be set, as CONTRACT.md
says.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
if DEBUG:
    SECRET_KEY = SECRET_KEY or "dev-only-not-secret-" + "x" * 40  # noqa: F405
    AUDIT_HMAC_KEY = AUDIT_HMAC_KEY or "dev-only-audit-key"  # noqa: F405
    ALLOWED_HOSTS = ALLOWED_HOSTS or ["127.0.0.1", "localhost", "[::1]", "testserver"]  # noqa: F405
else:
    _missing = [
        name
        for name, value in (
            ("SECRET_KEY", SECRET_KEY),
            ("ALLOWED_HOSTS", ALLOWED_HOSTS),
            ("AUDIT_HMAC_KEY", AUDIT_HMAC_KEY),
        )
        if not value
    ]
    if _missing:
        raise ImproperlyConfigured(
            "DEBUG is off, so these must be set (or <NAME>_FILE): " + ", ".join(_missing)
        )
LOG_JSON = env.bool("LOG_JSON", default=False)
