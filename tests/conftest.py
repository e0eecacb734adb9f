"""Fixtures shared by every test area. Area-specific ones live in tests/<area>/conftest.py."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from portal import clock

# Property tests check values, not speed: no per-example deadline, which a loaded CI
# machine would otherwise turn into flaky failures.
hypothesis_settings.register_profile("portal", deadline=None)
hypothesis_settings.load_profile("portal")

FIXTURE_TARGETS = Path(__file__).parent / "fixtures" / "targets"


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("MSSQL_PARITY") == "1":
        from tests.mssql.parity import install_parity_flags

        install_parity_flags()


@pytest.fixture(autouse=True)
def _postgres_only(request):
    """Tests marked ``postgres_only(reason=...)`` skip, saying why, on other databases."""
    marker = request.node.get_closest_marker("postgres_only")
    if marker is not None:
        from django.db import connection

        if connection.vendor != "postgresql":
            reason = marker.kwargs.get("reason", "needs a real PostgreSQL server")
            pytest.skip(f"needs PostgreSQL: {reason}; set DATABASE_URL=postgres://…")


@pytest.fixture(autouse=True)
def _intake_caches_cleared():
    """Each test starts without another test's cached targets or open-intent counts.

    Their database rows were rolled back, but the per-process caches of the intake
    path (intents.selectors) would still hold them.
    """
    from intents.selectors import intake_caches_clear

    intake_caches_clear()
    yield
    intake_caches_clear()


@pytest.fixture
def frozen_clock():
    """The engine's clock, frozen; ``frozen_clock.advance(s)`` moves it. Never sleep."""
    with clock.override(dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)) as handle:
        yield handle


@pytest.fixture
def tenant(db):
    from portal.accounts.models import Tenant

    return Tenant.objects.create(name="acme")


@pytest.fixture
def other_tenant(db):
    from portal.accounts.models import Tenant

    return Tenant.objects.create(name="globex")


@pytest.fixture
def targets(db):
    """The fixture registry (tests/fixtures/targets) loaded through sync_targets' service."""
    from intents.registry import registry_sync

    registry_sync(directory=FIXTURE_TARGETS, actor_label="tests")
