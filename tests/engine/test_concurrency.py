"""Two dispatchers claiming at once never lease one intent twice (real row locks on PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from intents.dispatch import claim_batch
from intents.models import Intent, IntentStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.postgres_only(
    reason="SQLite serialises writers, so the test passes there even without the row lock"
)
def test_two_dispatchers_never_claim_the_same_intent(tenant, other_tenant, submit, clone_intents):
    clone_intents(submit(), 299)
    clone_intents(submit(tenant_=other_tenant, key="other"), 199)
    tenant_ids = [tenant.id, other_tenant.id]
    claimed: dict[str, list[int]] = {"a": [], "b": []}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def dispatcher(name: str) -> None:
        try:
            start.wait()
            while True:
                batch = claim_batch(
                    tenant_ids=tenant_ids, batch_size=25, worker_id=name, lease_margin_s=30
                )
                if batch is None:
                    break
                claimed[name].extend(batch.intent_ids)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=dispatcher, args=(n,)) for n in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    a, b = set(claimed["a"]), set(claimed["b"])
    assert len(a) == len(claimed["a"]) and len(b) == len(claimed["b"])
    assert not a & b
    assert a | b == set(Intent.objects.values_list("id", flat=True))
    assert Intent.objects.filter(status=IntentStatus.IN_FLIGHT).count() == 500
    owners = Intent.objects.values_list("lease_owner", flat=True).distinct()
    assert all(owner.split(":")[0] in {"a", "b"} for owner in owners)
    if connection.vendor == "postgresql":
        # Both really worked in parallel (skip-locked let them share the backlog).
        assert a and b
