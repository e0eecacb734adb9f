"""Settings for the benchmark's processes: the dev settings with an in-process gateway.

``DATABASE_URL`` (set by ``bench/run.py``) points at a throw-away ``portal_bench_*``
database. ``BENCH_GATEWAY_LATENCY_S`` adds a simulated per-call gateway latency.
DEBUG stays off: with DEBUG on, Django keeps every query in memory.
"""

from __future__ import annotations

import os

from portal.settings.dev import *  # noqa: F403

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

_INPROCESS = "gateways.adapters.inprocess.InProcessGateway"
GATEWAY_ADAPTERS = {"sms": _INPROCESS, "push": _INPROCESS, "http": _INPROCESS}
GATEWAY_INPROCESS_LATENCY_S = float(os.environ.get("BENCH_GATEWAY_LATENCY_S", "0") or 0)

# Generous limits: the bench measures throughput, not the tenant's rate limit.
DEFAULT_TENANT_RATE_PER_MINUTE = 10_000_000
DEFAULT_TENANT_MAX_OPEN_INTENTS = 100_000_000

LOG_LEVEL = "WARNING"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "django-q": {"level": "WARNING"},
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
    },
}
