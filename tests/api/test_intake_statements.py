"""POST /api/v1/intents sends five statements: key, rate window, then in one short
transaction the tenant lock, the quota estimate and the INSERT (the lock keeps the
open-intent quota exact under concurrency, issue 11)."""

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
    # SQLite's BEGIN and COMMIT are captured as statements, PostgreSQL's are not.
    verbs = [verb for verb in verbs if verb not in ("BEGIN", "COMMIT", "ROLLBACK")]
    # PostgreSQL's BEGIN is implicit in the driver, so count the blocks that opened one.
    return response.status_code, ["BEGIN"] * sum(opened) + verbs


def test_a_new_intent_costs_five_statements_and_one_transaction(api, targets):
    assert statements(api, "warm-up")[0] == 201  # opens the rate window, counts once

    status, sent = statements(api, "second")
    assert status == 201
    # API key, rate-window UPDATE, then one transaction: tenant row FOR UPDATE,
    # open-intent estimate, INSERT.
    assert sent == ["BEGIN", "SELECT", "UPDATE", "SELECT", "SELECT", "INSERT"], sent


def test_a_retry_is_answered_after_the_insert_meets_the_unique_index(api, targets):
    assert statements(api, "once")[0] == 201
    status, sent = statements(api, "once")
    assert status == 200
    assert sent == ["BEGIN", "SELECT", "UPDATE", "SELECT", "SELECT", "INSERT", "SELECT"], sent
    assert Intent.objects.count() == 1
