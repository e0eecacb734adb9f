"""POST /api/v1/intents sends three statements: rate window, quota estimate, INSERT.

The API key was verified by the warm-up request and is cached (API_KEY_CACHE_TTL_S).
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
    # PostgreSQL's BEGIN is implicit in the driver, so count the blocks that opened one.
    return response.status_code, ["BEGIN"] * sum(opened) + verbs


def test_a_new_intent_costs_three_statements_and_no_transaction(api, targets):
    assert statements(api, "warm-up")[0] == 201  # opens the rate window, counts once

    status, sent = statements(api, "second")
    assert status == 201
    # Rate-window UPDATE, open-intent estimate, INSERT (autocommit: no BEGIN).
    assert sent == ["UPDATE", "SELECT", "INSERT"], sent


def test_a_retry_is_answered_after_the_insert_meets_the_unique_index(api, targets):
    assert statements(api, "once")[0] == 201
    status, sent = statements(api, "once")
    assert status == 200
    assert sent == ["UPDATE", "SELECT", "INSERT", "SELECT"], sent
    assert Intent.objects.count() == 1
