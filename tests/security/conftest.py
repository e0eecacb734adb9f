"""Two tenants' rows for the security tests: ``mine`` (the viewer's) and ``foreign``."""

from __future__ import annotations

import pytest

from tests.accounts.conftest import login_post, traveller  # noqa: F401  (shared fixtures)
from tests.api.conftest import api, api_key, submit  # noqa: F401  (the API tests' fixtures)
from tests.observability.conftest import Rows


@pytest.fixture
def mine(db, tenant, frozen_clock) -> Rows:
    return Rows(tenant, frozen_clock.now)


@pytest.fixture
def foreign(mine, other_tenant) -> Rows:
    rows = Rows(other_tenant, mine.now)
    rows._revisions = mine._revisions  # one target registry for both tenants
    return rows
