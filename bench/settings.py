"""Settings for the benchmark's processes: the dev settings with an in-process gateway.

``DATABASE_URL`` (set by ``bench/run.py``) points at a throw-away ``bench_*``
database. ``BENCH_GATEWAY_LATENCY_S`` adds a simulated per-call gateway latency.
``BENCH_GATEWAY_ADAPTERS=product`` keeps the product's channel adapters (the
``providers`` section sends to a real simulator over HTTP).
DEBUG stays off: with DEBUG on, Django keeps every query in memory (the last 9,000).
``BENCH_DEBUG=1`` turns it on for the ``events`` section alone, in both of its runs: the
product calls a client's ``http://`` endpoint (the loopback receiver) only with DEBUG on.
"""

from __future__ import annotations

import os

from portal.settings.dev import *  # noqa: F403

DEBUG = os.environ.get("BENCH_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

_INPROCESS = "gateways.adapters.inprocess.InProcessGateway"
if os.environ.get("BENCH_GATEWAY_ADAPTERS") != "product":
    GATEWAY_ADAPTERS = dict.fromkeys(("sms", "push", "http", "email"), _INPROCESS)
GATEWAY_INPROCESS_LATENCY_S = float(os.environ.get("BENCH_GATEWAY_LATENCY_S", "0") or 0)

# Generous limits: the bench measures throughput, not the tenant's rate limit.
DEFAULT_TENANT_RATE_PER_MINUTE = 10_000_000
DEFAULT_TENANT_MAX_OPEN_INTENTS = 100_000_000

# Per-intent lifecycle lines are INFO: the bench logs WARNING and up by default, so it
# measures the engine, not a console. BENCH_LOG_LEVEL=INFO measures them too.
LOG_LEVEL = os.environ.get("BENCH_LOG_LEVEL", "WARNING")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"structured": {"()": "portal.observability.logging.StructuredFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django-q": {"level": "WARNING"},
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
    },
}
