"""Finding 7: the open-intent quota holds exactly under concurrent submits (real
PostgreSQL: the tenant row is locked while the quota is checked and the intent inserted)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from django.db import connections
from django.test import Client

from intents.models import OPEN_STATUSES, Intent
from tests.api.conftest import SMS_OTP_BODY, make_key

CAP = 5
THREADS = 30

pytestmark = [
    pytest.mark.postgres_only(
        reason="SQLite serialises every writer, so concurrent submits never race"
    ),
    pytest.mark.django_db(transaction=True),
]


def _post_all(api_key: str, keys: list[str]) -> list[Any]:
    responses: list[Any] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(keys))
    lock = threading.Lock()

    def post(key: str) -> None:
        try:
            client = Client(raise_request_exception=True)
            start.wait(timeout=30)
            response = client.post(
                "/api/v1/intents",
                json.dumps(SMS_OTP_BODY),
                content_type="application/json",
                headers={"Authorization": f"Bearer {api_key}", "Idempotency-Key": key},
            )
            with lock:
                responses.append(response)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(responses) == len(keys)
    return responses


@pytest.mark.parametrize("round_", [1, 2])
def test_thirty_concurrent_submits_open_exactly_the_cap(tenant, targets, round_):
    tenant.max_open_intents = CAP
    tenant.rate_limit_per_minute = 10_000
    tenant.save(update_fields=["max_open_intents", "rate_limit_per_minute"])

    responses = _post_all(make_key(tenant), [f"r{round_}-{n}" for n in range(THREADS)])

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] * CAP + [429] * (THREADS - CAP), [r.content for r in responses]
    assert Intent.objects.filter(tenant=tenant, status__in=OPEN_STATUSES).count() == CAP
    refused = [json.loads(r.content) for r in responses if r.status_code == 429]
    assert {body["code"] for body in refused} == {"quota_exceeded"}
