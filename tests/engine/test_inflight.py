"""Several batches in flight per cluster worker (intents/inflight.py)."""

from __future__ import annotations

import threading

import pytest

from intents import inflight, tasks
from intents.dispatch import claim_batch
from intents.models import Intent, IntentStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_pool_left():
    yield
    inflight.shutdown()  # its threads' connections would keep the test database open


def claim(tenant, size):
    batch = claim_batch(tenant_ids=[tenant.id], batch_size=size, worker_id="w", lease_margin_s=30)
    assert batch is not None
    return batch


def test_batches_handed_to_the_pool_are_all_recorded(settings, scripted, submit, tenant):
    settings.EXECUTION_BATCHES_IN_FLIGHT = 2
    for n in range(6):
        submit(key=f"k{n}")
    batches = [claim(tenant, 2) for _ in range(3)]
    for batch in batches:
        assert tasks.execute_batch(batch.lease_token, batch.intent_ids) is None  # returned early
    assert inflight.wait_idle(timeout=60)
    assert set(Intent.objects.values_list("status", flat=True)) == {IntentStatus.ACCEPTED}


def test_the_worker_takes_no_more_than_its_slots(settings, monkeypatch):
    settings.EXECUTION_BATCHES_IN_FLIGHT = 2
    release = threading.Event()
    ran: list[str] = []

    def blocked(*, lease_token, intent_ids):
        ran.append(lease_token)
        release.wait(60)
        return len(intent_ids)

    monkeypatch.setattr(inflight, "execute_batch", blocked)
    assert inflight.submit_batch(lease_token="a", intent_ids=[1]) is None
    assert inflight.submit_batch(lease_token="b", intent_ids=[2]) is None
    _, slots = inflight._started(2)
    assert not slots.acquire(blocking=False)  # a third task would wait in the worker
    release.set()
    assert inflight.wait_idle(timeout=60)
    assert sorted(ran) == ["a", "b"]


def test_one_in_flight_runs_the_batch_inside_its_task(settings, scripted, submit, tenant):
    settings.EXECUTION_BATCHES_IN_FLIGHT = 1
    intent = submit()
    batch = claim(tenant, 1)
    assert tasks.execute_batch(batch.lease_token, batch.intent_ids) == 1
    intent.refresh_from_db()
    assert intent.status == IntentStatus.ACCEPTED
