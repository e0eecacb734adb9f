"""Unit-test settings: fast hasher, locmem cache, django-q2 in sync mode."""

from __future__ import annotations

from .dev import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
Q_CLUSTER = {**Q_CLUSTER, "sync": True}  # noqa: F405
AXES_ENABLED = True
MEDIA_ROOT = BASE_DIR / "var" / "test-media"  # noqa: F405
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LOG_JSON = True

# SQLite tests use a file, not the in-memory default: threads and processes in the tests
# then meet the same WAL and busy-timeout behaviour as `make run` (an in-memory shared
# cache fails with "table is locked" instead of waiting). One file per test process.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    import os as _os

    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": str(BASE_DIR / "var" / f"test-{_os.getpid()}.sqlite3")  # noqa: F405
    }
    (BASE_DIR / "var").mkdir(exist_ok=True)  # noqa: F405
# Batches run inside their task, so a test sees the outcome when the task returns;
# tests/engine/test_inflight.py covers the overlapped path.
EXECUTION_BATCHES_IN_FLIGHT = 1
