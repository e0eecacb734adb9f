"""POST /api/v1/intents: one transaction of two statements and one commit.

The INSERT and the rate-window UPDATE (which also admits the tenant's submits one at a
time, and returns the window's count for the quota estimate). The API key was verified
by the warm-up request and is cached (API_KEY_CACHE_TTL_S). Mid-minute, so the quota's
estimate reaches back into no earlier window (see test_intake_quota).
"""

from __future__ import annotations

from unittest import mock

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from intents.models import Intent

from .conftest import SMS_OTP_BODY

# Autocommit, as under a real server: the test must not wrap the request in a transaction.
pytestmark = pytest.mark.django_db(transaction=True)


def statements(api, key: str) -> tuple[int, list[str]]:
    """The response status and the verbs sent; BEGIN when a transaction was opened."""
    opened = []
    real_enter = transaction.Atomic.__enter__

    def spy(self):
        opened.append(connection.get_autocommit())
        return real_enter(self)

    with (
        mock.patch.object(transaction.Atomic, "__enter__", spy),
        CaptureQueriesContext(connection) as captured,
    ):
        response = api.post("/api/v1/intents", SMS_OTP_BODY, idempotency_key=key)
    verbs = [q["sql"].split()[0].upper() for q in captured]
    # PostgreSQL's BEGIN is implicit in the driver (SQLite's is logged), so count the
    # blocks that opened one instead.
    return response.status_code, ["BEGIN"] * sum(opened) + [v for v in verbs if v != "BEGIN"]


@pytest.fixture
def mid_minute(frozen_clock):
    frozen_clock.advance(30)
    return frozen_clock


def test_a_new_intent_costs_two_statements_in_one_transaction(api, targets, mid_minute):
    assert statements(api, "warm-up")[0] == 201  # opens the rate window, counts once
    mid_minute.advance(1)

    status, sent = statements(api, "second")
    assert status == 201
    assert sent == ["BEGIN", "INSERT", "UPDATE", "COMMIT"], sent


def test_a_retry_is_answered_after_the_insert_meets_the_unique_index(api, targets, mid_minute):
    assert statements(api, "once")[0] == 201
    status, sent = statements(api, "once")
    assert status == 200
    # The INSERT meets the unique index and its transaction rolls back before it was
    # counted; the request is counted on its own (autocommit) and answered from the
    # intent its key made.
    assert sent == ["BEGIN", "INSERT", "ROLLBACK", "UPDATE", "SELECT"], sent
    assert Intent.objects.count() == 1
