"""The outbox writes a batch's events in a fixed number of queries, whatever its size,
and the secrets never reach a log line."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from intents.dispatch import run_once
from intents.models import Intent, IntentStatus
from portal.events.models import WebhookEvent

pytestmark = pytest.mark.django_db


def recording_queries(submit, count: int) -> list[str]:
    for _ in range(count):
        submit()
    with CaptureQueriesContext(connection) as captured:
        run_once(max_batches=1)  # the client intents only: their events wait
    # Out of the next measurement's way: it counts one batch of client intents.
    Intent.objects.filter(internal=True).update(status=IntentStatus.CANCELLED)
    return [query["sql"] for query in captured.captured_queries]


def split(queries: list[str]) -> tuple[int, int]:
    """(inserts, everything else): a bulk insert is cut into statements by the
    database's parameter limit (SQLite's 999), nothing else may grow with the batch."""
    inserts = sum(1 for sql in queries if sql.startswith("INSERT"))
    return inserts, len(queries) - inserts


def test_events_cost_the_same_queries_for_5_or_40_intents(
    frozen_clock, scripted, submit, make_endpoint
):
    make_endpoint()
    make_endpoint(event_types=["intent.accepted"])
    recording_queries(submit, 1)  # the first makes the built-in delivery target
    small = recording_queries(submit, 5)
    assert WebhookEvent.objects.count() == 2 + 10
    large = recording_queries(submit, 40)
    assert WebhookEvent.objects.count() == 2 + 10 + 80
    (small_inserts, small_others), (large_inserts, large_others) = split(small), split(large)
    assert large_others == small_others
    assert large_inserts <= small_inserts + 4  # 80 intents of ~40 columns in 999-bound chunks


def test_no_event_query_for_tenants_without_endpoints(frozen_clock, scripted, submit):
    queries = recording_queries(submit, 5)
    assert not any("events_webhookevent" in sql for sql in queries)
    assert sum("events_webhookendpoint" in sql for sql in queries) == 1  # one look, that's all


def test_secrets_never_reach_the_logs(
    frozen_clock, scripted, submit, make_endpoint, receiver, hooks_api, caplog
):
    caplog.set_level("DEBUG")
    endpoint = make_endpoint()
    rotated = hooks_api.post(f"/api/v1/webhook-endpoints/{endpoint['id']}/rotate-secret")
    new_secret = json.loads(rotated.content)["secret"]
    receiver.default = 500
    submit()
    run_once()
    assert receiver.received  # it was sent (and failed): every log line of that is here
    for secret in (endpoint["secret"], new_secret):
        assert secret not in caplog.text
        assert secret.removeprefix("whsec_") not in caplog.text


def test_a_signing_secret_in_free_text_is_redacted():
    from portal.redaction import redact

    line = redact({"error": "refused whsec_MfKQ9r4gK1Qp5Lh0v2eFJjXb1n2Yc3Zk4aW5sT6uV7w= here"})
    assert line == {"error": "refused whsec_[redacted] here"}
