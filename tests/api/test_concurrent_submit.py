"""Concurrent POSTs with one Idempotency-Key create exactly one intent (real PostgreSQL)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from django.db import connections
from django.test import Client

from intents.models import Intent

from .conftest import SMS_OTP_BODY

THREADS = 20

pytestmark = [
    pytest.mark.postgres_only(
        reason="SQLite serialises every writer, so the requests never race on the unique index"
    ),
    pytest.mark.django_db(transaction=True),
]


def test_twenty_concurrent_posts_with_one_key_create_one_intent(tenant, api_key, targets):
    responses: list[Any] = []
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)
    lock = threading.Lock()

    def post() -> None:
        try:
            client = Client(raise_request_exception=True)
            start.wait(timeout=30)
            response = client.post(
                "/api/v1/intents",
                json.dumps(SMS_OTP_BODY),
                content_type="application/json",
                headers={"Authorization": f"Bearer {api_key}", "Idempotency-Key": "once"},
            )
            with lock:
                responses.append(response)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
        finally:
            connections.close_all()  # each thread used its own connection

    threads = [threading.Thread(target=post) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors
    assert len(responses) == THREADS
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * (THREADS - 1) + [201], [r.content for r in responses]
    bodies = [json.loads(r.content) for r in responses]
    assert len({b["id"] for b in bodies}) == 1
    assert all(b == bodies[0] for b in bodies)
    for response in responses:
        if response.status_code == 200:
            assert response["Idempotent-Replayed"] == "true"
        else:
            assert response["Location"].endswith(f"/api/v1/intents/{bodies[0]['id']}")
    assert Intent.objects.count() == 1
    assert str(Intent.objects.get().public_id) == bodies[0]["id"]


def test_concurrent_posts_with_one_key_and_different_payloads(tenant, api_key, targets):
    """One wins (201); every other request is refused as a reuse (409), never a 500."""
    results: list[tuple[int, dict[str, Any]]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)
    lock = threading.Lock()

    def post(n: int) -> None:
        try:
            client = Client()
            body = {**SMS_OTP_BODY, "payload": {"to": "+15550100001", "text": f"code {n}"}}
            start.wait(timeout=30)
            response = client.post(
                "/api/v1/intents",
                json.dumps(body),
                content_type="application/json",
                headers={"Authorization": f"Bearer {api_key}", "Idempotency-Key": "once"},
            )
            with lock:
                results.append((response.status_code, json.loads(response.content)))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] + [409] * (THREADS - 1)
    assert all(body["code"] == "idempotency_key_reused" for s, body in results if s == 409)
    assert Intent.objects.count() == 1
