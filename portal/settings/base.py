"""Settings shared by every environment.

One ``environ.Env`` reads the process environment and an optional ``.env`` in the
checkout; every secret can also come from ``<NAME>_FILE`` (see ``env_secret``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import django_stubs_ext
import environ

# Django's generic classes (``ModelAdmin[Intent]``, ``ModelForm[Tenant]``) subscriptable
# at run time too, as the type hints spell them.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def env_secret(name: str, default: str | None = None) -> str | None:
    """Read ``NAME`` or, when ``NAME_FILE`` is set, the first line of that file."""
    file_path = env.str(f"{name}_FILE", default="")
    if file_path:
        return Path(file_path).read_text(encoding="utf-8").strip()
    value: str | None = env.str(name, default=default)
    return value


DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env_secret("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
AUDIT_HMAC_KEY = env_secret("AUDIT_HMAC_KEY")

INSTALLED_APPS = [
    "portal.apps.PortalAdminConfig",  # OTPAdminSite as the default admin site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",  # its AbstractAPIKey base; the app itself must be installed
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "csp",
    "portal.accounts",
    "portal.audit",
    "portal.observability",
    "portal.backups",
    "gateways",
    "intents",
    "deadletters",
    "portal.events",
    "portal.escalation",
    "portal.console",  # the composition layer: cross-app admin screens and demo commands
]

MIDDLEWARE = [
    "portal.observability.middleware.RequestIdMiddleware",
    "portal.request_guards.NulCharacterGuardMiddleware",
    "portal.request_guards.ApiNoStoreMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "portal.accounts.middleware.SessionTimeoutMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "portal.csp_middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "csp.context_processors.nonce",
            ],
        },
    },
]


def database_from_env(url: str) -> dict[str, Any]:
    """Parse ``DATABASE_URL`` and add each vendor's concurrency settings.

    SQLite is the embedded default and must survive the web server, the dispatcher
    and the workers writing at once: WAL lets readers run beside the writer, the busy
    timeout makes writers queue instead of failing, and IMMEDIATE transactions take
    the write lock at BEGIN so two writers never deadlock upgrading a read lock.
    """
    db: dict[str, Any] = env.db_url_config(url)
    engine = db["ENGINE"]
    options = db.setdefault("OPTIONS", {})
    if engine == "django.db.backends.sqlite3":
        options.setdefault("timeout", 30)
        options.setdefault("transaction_mode", "IMMEDIATE")
        options.setdefault(
            "init_command",
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
        )
    elif engine == "django.db.backends.postgresql":
        db.setdefault("CONN_MAX_AGE", 60)
        db.setdefault("CONN_HEALTH_CHECKS", True)
    elif engine in {"mssql", "sql_server.pyodbc"}:
        db["ENGINE"] = "mssql"
        db.setdefault("CONN_MAX_AGE", 60)
        db.setdefault("CONN_HEALTH_CHECKS", True)
        options.setdefault("python_driver", "mssql_python")
    return db


DATABASES = {
    "default": database_from_env(
        env.str("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# One human time format everywhere: 2026-12-03 10:27:49 UTC (portal/formats).
FORMAT_MODULE_PATH = ["portal.formats"]

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Written by `seed_demo` (logins, TOTP secrets, the demo API key), read by `demo_traffic`.
DEMO_CREDENTIALS_FILE = BASE_DIR / "var" / "demo_credentials.json"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "var" / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
LOGIN_URL = "admin:login"
# Where a login lands when its `next=` is missing or refused as unsafe (not Django's
# /accounts/profile/, which the portal does not have).
LOGIN_REDIRECT_URL = "admin:index"

# --- Sessions and cookies: an idle timeout (cookie age, refreshed on every request)
# and an absolute one enforced by SessionTimeoutMiddleware.
SESSION_COOKIE_AGE = env.int("SESSION_IDLE_TIMEOUT_S", default=60 * 60)
SESSION_SAVE_EVERY_REQUEST = True
SESSION_ABSOLUTE_TIMEOUT_S = env.int("SESSION_ABSOLUTE_TIMEOUT_S", default=8 * 60 * 60)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# --- django-otp and django-axes
OTP_TOTP_ISSUER = "Submission Portal"
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
OTP_TOTP_THROTTLE_FACTOR = 1
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25)  # hours; never permanent
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"  # says when the cool-off ends
AXES_VERBOSE = False
# How many reverse proxies of ours stand in front of the web processes. The client
# address (lockouts, audit events) is then read from X-Forwarded-For through exactly that
# many hops; 0 (the default) never reads the header. See docs/deployment.md.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "portal.audit.services.ip_from_request"
# How long a `manage.py invite_staff` enrolment link stays valid (seconds).
STAFF_INVITATION_TTL_S = env.float("STAFF_INVITATION_TTL_S", default=72 * 3600)

# --- REST API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["portal.accounts.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "portal.api.problems.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Submission Portal API",
    "DESCRIPTION": "Submit durable delivery intents and follow them to a terminal state.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several fields are called "status" or hold event types: one named enum each.
    "ENUM_NAME_OVERRIDES": {
        "WebhookEndpointStatusEnum": "portal.events.models.EndpointStatus",
        "WebhookDeliveryStatusEnum": "portal.events.models.DELIVERY_STATUSES",
        "WebhookEventTypeEnum": "portal.events.models.EVENT_TYPES",
    },
}
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=64 * 1024)
# How long a web process trusts an API key it verified (0: never cached). A revoked key,
# a disabled tenant or a changed tenant limit takes effect in the other processes within
# this many seconds; in the process that saved the change, at once (docs/performance.md).
API_KEY_CACHE_TTL_S = env.float("API_KEY_CACHE_TTL_S", default=5.0)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(API_MAX_BODY_BYTES * 2, 2_621_440)

# --- Delivery engine
TARGETS_DIR = env.path("TARGETS_DIR", default=BASE_DIR / "conf" / "targets")
GATEWAY_SMS_URL = env.str("GATEWAY_SMS_URL", default="http://127.0.0.1:8025/sms")
GATEWAY_PUSH_URL = env.str("GATEWAY_PUSH_URL", default="http://127.0.0.1:8025/push")
GATEWAY_HTTP_URL = env.str("GATEWAY_HTTP_URL", default="http://127.0.0.1:8025/http")
GATEWAY_EMAIL_URL = env.str("GATEWAY_EMAIL_URL", default="http://127.0.0.1:8025/email")
# Status lookup by idempotency key (reconciliation after a timeout); "" = cannot be asked.
# By default "<send URL>/status", the simulator's layout, so pointing a gateway's send URL
# elsewhere never leaves its lookups asking the local simulator.
GATEWAY_SMS_STATUS_URL = env.str("GATEWAY_SMS_STATUS_URL", default=f"{GATEWAY_SMS_URL}/status")
GATEWAY_PUSH_STATUS_URL = env.str("GATEWAY_PUSH_STATUS_URL", default=f"{GATEWAY_PUSH_URL}/status")
GATEWAY_HTTP_STATUS_URL = env.str("GATEWAY_HTTP_STATUS_URL", default=f"{GATEWAY_HTTP_URL}/status")
GATEWAY_EMAIL_STATUS_URL = env.str(
    "GATEWAY_EMAIL_STATUS_URL", default=f"{GATEWAY_EMAIL_URL}/status"
)
GATEWAY_ALLOWED_HOSTS = env.list("GATEWAY_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
# gateway name -> adapter class; the bench swaps in an in-process gateway here.
GATEWAY_ADAPTERS = {
    "sms": "gateways.adapters.sms.SmsGateway",
    "push": "gateways.adapters.push.PushGateway",
    "http": "gateways.adapters.http.HttpGateway",
    "email": "gateways.adapters.email.EmailGateway",
}
# --- v1.1: connections (conf/connections/*.toml, loaded by sync_targets) and secrets
CONNECTIONS_DIR = env.path("CONNECTIONS_DIR", default=BASE_DIR / "conf" / "connections")
# --- v1.1: escalation rules (loaded by sync_targets) and their notifications
ESCALATIONS_FILE = env.path("ESCALATIONS_FILE", default=BASE_DIR / "conf" / "escalations.toml")
# PagerDuty's payload.source and the name in every Slack/webhook/email message.
ESCALATION_SOURCE = env.str("ESCALATION_SOURCE", default="submission-portal")
ESCALATION_SEND_TIMEOUT_S = env.float("ESCALATION_SEND_TIMEOUT_S", default=10.0)
SECRETS_TTL_S = env.float("SECRETS_TTL_S", default=300.0)
SECRETS_AWS_REGION = env.str("SECRETS_AWS_REGION", default="us-east-1")
SECRETS_AWS_ENDPOINT_URL = env.str("SECRETS_AWS_ENDPOINT_URL", default="")
# The key of the suppression list's recipient hashes (HMAC-SHA256); SECRET_KEY when unset.
SUPPRESSION_HASH_KEY = env_secret("SUPPRESSION_HASH_KEY", default="")
# The Standard Webhooks secret (whsec_…) the built-in simulator connections verify their
# delivery receipts with; "" = they send none (delivery_status "unknown").
GATEWAY_SIMULATOR_RECEIPT_SECRET = env_secret("GATEWAY_SIMULATOR_RECEIPT_SECRET", default="")
# --- client webhooks (portal/events): the key that encrypts endpoints' signing secrets
# (SECRET_KEY when unset), how long an endpoint may fail every attempt before it is
# disabled, and the networks (CIDR) a webhook URL may resolve to although private.
WEBHOOK_SECRETS_KEY = env_secret("WEBHOOK_SECRETS_KEY", default="")
WEBHOOK_DISABLE_AFTER_S = env.float("WEBHOOK_DISABLE_AFTER_S", default=5 * 24 * 3600.0)
WEBHOOK_ALLOWED_CIDRS = env.list("WEBHOOK_ALLOWED_CIDRS", default=[])
DISPATCH_BATCH_SIZE = env.int("DISPATCH_BATCH_SIZE", default=100)
DISPATCH_IDLE_POLL_S = env.float("DISPATCH_IDLE_POLL_S", default=0.2)
DISPATCH_MAX_QUEUED_BATCHES = env.int("DISPATCH_MAX_QUEUED_BATCHES", default=8)
LEASE_MARGIN_S = env.float("LEASE_MARGIN_S", default=30.0)
# Claimed batches one cluster worker process runs at once (intents/inflight.py): one
# batch's gateway wait overlaps another's recording. 1 runs each batch inside its task.
EXECUTION_BATCHES_IN_FLIGHT = env.int("EXECUTION_BATCHES_IN_FLIGHT", default=2)
SWEEP_INTERVAL_S = env.float("SWEEP_INTERVAL_S", default=5.0)
REPLAY_REQUEST_TTL_S = env.int("REPLAY_REQUEST_TTL_S", default=24 * 60 * 60)
REPLAY_MAX_ITEMS = env.int("REPLAY_MAX_ITEMS", default=5000)  # dead letters per request
REPLAY_PLAN_SAMPLE_SIZE = 20
EVIDENCE_MAX_BYTES = env.int("EVIDENCE_MAX_BYTES", default=10 * 1024 * 1024)
DEAD_LETTER_RETENTION_DAYS = env.int("DEAD_LETTER_RETENTION_DAYS", default=90)
RETENTION_INTENT_DAYS = env.int("RETENTION_INTENT_DAYS", default=30)
# Bounds a tenant's retry-policy override may not leave.
TENANT_RETRY_BOUNDS = {"max_attempts": (1, 20), "max_delay_s": (0.1, 3600.0)}
DEFAULT_TENANT_RATE_PER_MINUTE = env.int("DEFAULT_TENANT_RATE_PER_MINUTE", default=6000)
DEFAULT_TENANT_MAX_OPEN_INTENTS = env.int("DEFAULT_TENANT_MAX_OPEN_INTENTS", default=100_000)

# --- django-q2: its timeout must stay below retry, or a slow batch is handed out twice.
Q_CLUSTER = {
    "name": "portal",
    "orm": "default",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT_S", default=120),
    "retry": env.int("Q_RETRY_S", default=180),
    "max_attempts": 2,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": env.int("Q_SAVE_LIMIT", default=-1),  # attempt rows are the history
    "poll": env.float("Q_POLL_S", default=0.05),
    "bulk": 10,
    "label": "Task queue",
}
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:  # a Redis broker for scale-out beyond one database's polling rate
    Q_CLUSTER.pop("orm")
    Q_CLUSTER["redis"] = REDIS_URL

# --- Observability
METRICS_TOKEN = env_secret("METRICS_TOKEN", default="")
READINESS_MAX_DISPATCH_LAG_S = env.float("READINESS_MAX_DISPATCH_LAG_S", default=60.0)
READINESS_MAX_HEARTBEAT_AGE_S = env.float("READINESS_MAX_HEARTBEAT_AGE_S", default=60.0)
# /readyz wants a fresh heartbeat of each kind (see portal/observability/services.py).
READINESS_HEARTBEAT_KINDS = env.list("READINESS_HEARTBEAT_KINDS", default=["dispatcher", "worker"])
# Multi-process metrics: PROMETHEUS_MULTIPROC_DIR must be in the environment of every
# process before it starts (prometheus-client reads it at import); see docs/architecture.md.
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_JSON = env.bool("LOG_JSON", default=True)
# OpenTelemetry traces (portal/observability/tracing.py): off unless set; the SDK reads
# the rest of its OTEL_* variables itself.
OTEL_EXPORTER_OTLP_ENDPOINT = env.str("OTEL_EXPORTER_OTLP_ENDPOINT", default="")
# Extra key names blanked in every log line, on top of secret-looking ones and the
# target contract's sensitive_fields.
LOG_REDACT_FIELDS = env.list("LOG_REDACT_FIELDS", default=[])
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # JSON lines when LOG_JSON, else readable console lines; both redacted.
    "formatters": {"structured": {"()": "portal.observability.logging.StructuredFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "django-q": {"level": "WARNING"},
    },
}
