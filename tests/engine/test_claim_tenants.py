"""The claim visits only tenants with due work, in rotation (intents/due_tenants.py).

Counted in statements and batches, never timed: the bench times the claim
(``bench/run.py``, "claim over tenants").
"""

from __future__ import annotations

import datetime as dt
import math
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from intents import due_tenants
from intents.dispatch import claim_from
from intents.due_tenants import DueTenants
from intents.models import Intent, IntentStatus
from portal.accounts.models import Tenant

BATCH = 100


def claim(tenants: DueTenants, batch_size: int = BATCH):
    return claim_from(tenants, batch_size=batch_size, worker_id="test", lease_margin_s=30)


def make_tenants(count: int, prefix: str) -> list[Tenant]:
    Tenant.objects.bulk_create([Tenant(name=f"{prefix}-{i}") for i in range(count)])
    return list(Tenant.objects.filter(name__startswith=f"{prefix}-").order_by("id"))


def give_due_work(template: Intent, tenants: list[Tenant], per_tenant: int) -> None:
    """``per_tenant`` copies of ``template`` for each tenant, due as it is."""
    fields = [f for f in Intent._meta.concrete_fields if not f.primary_key]
    rows = []
    for tenant in tenants:
        for n in range(per_tenant):
            row = Intent(**{f.attname: getattr(template, f.attname) for f in fields})
            row.tenant_id = tenant.id
            row.public_id = uuid.uuid4()
            row.idempotency_key = f"{tenant.id}-{n}"
            rows.append(row)
    Intent.objects.bulk_create(rows, batch_size=500)


def statements_of_one_claim(tenants: DueTenants) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        batch = claim(tenants)
    assert batch is not None
    return [q["sql"] for q in queries]


def test_idle_tenants_cost_no_statement(frozen_clock, submit, tenant):
    template = submit()
    few = make_tenants(10, "few")
    give_due_work(template, few[:5], 20)
    Intent.objects.filter(pk=template.pk).delete()
    small = statements_of_one_claim(DueTenants())
    Intent.objects.all().delete()

    template = submit(key="again")
    many = make_tenants(1000, "many")  # 1,010 active tenants now, 5 with due work
    give_due_work(template, many[:5], 20)
    Intent.objects.filter(pk=template.pk).delete()
    large = statements_of_one_claim(DueTenants())

    assert len(large) == len(small)
    assert len(large) <= 8  # savepoint, clock, refresh, ranked, lock, lease, release...


def test_a_tenant_with_nothing_due_is_not_visited(frozen_clock, submit, other_tenant):
    submit()
    later = submit(tenant_=other_tenant, key="later")
    Intent.objects.filter(pk=later.pk).update(
        next_attempt_at=later.next_attempt_at + dt.timedelta(hours=1)
    )
    tenants = DueTenants()
    batch = claim(tenants)
    assert batch is not None and len(batch.intent_ids) == 1
    assert other_tenant.id not in tenants  # never had due work
    assert len(tenants) == 0  # the first tenant's only intent was taken: it left


def test_work_falling_due_brings_its_tenant_back(frozen_clock, submit, tenant, other_tenant):
    submit()
    tenants = DueTenants()
    assert claim(tenants) is not None
    assert claim(tenants) is None
    frozen_clock.advance(1)
    fresh = submit(tenant_=other_tenant, key="fresh")  # seen by the recent look
    batch = claim(tenants)
    assert batch is not None and batch.intent_ids == [fresh.id]


def test_work_older_than_the_margin_is_found_by_the_full_look(
    frozen_clock, submit, tenant, monkeypatch
):
    tenants = DueTenants()
    assert claim(tenants) is None  # the first claim is a full look: nothing
    stale = submit()  # due now, but committed as if it had waited on a lock
    Intent.objects.filter(pk=stale.pk).update(
        next_attempt_at=stale.next_attempt_at - 2 * due_tenants.RECENT_MARGIN
    )
    assert claim(tenants) is None  # the recent look cannot see it
    monkeypatch.setattr(due_tenants, "FULL_REFRESH_S", 0.0)
    batch = claim(tenants)
    assert batch is not None and batch.intent_ids == [stale.id]


def test_an_inactive_tenant_is_not_claimed(frozen_clock, submit, other_tenant):
    submit(tenant_=other_tenant, key="theirs")
    Tenant.objects.filter(pk=other_tenant.pk).update(is_active=False)
    assert claim(DueTenants()) is None


def test_a_heavy_tenant_is_claimed_by_seek_and_keeps_its_place(
    frozen_clock, submit, clone_intents, other_tenant
):
    clone_intents(submit(), due_tenants.HEAVY_ROWS + 50)
    submit(tenant_=other_tenant, key="small")
    tenants = DueTenants()
    first = claim(tenants)
    assert first is not None and len(first.intent_ids) == BATCH
    # The small tenant took 1, the big one the rest; it has more, so it stays, heavy.
    assert len(tenants) == 1
    heavy = next(iter(tenants.next_up(1)))
    assert tenants.is_heavy(heavy)
    with CaptureQueriesContext(connection) as queries:
        second = claim(tenants)
    assert second is not None and len(second.intent_ids) == BATCH
    selects = [q["sql"] for q in queries if "FROM" in q["sql"] and "intents_intent" in q["sql"]]
    assert not any("ROW_NUMBER" in s.upper() for s in selects)  # a seek, not the ranking


def test_every_one_of_1000_tenants_is_served_within_its_bound(frozen_clock, submit, clone_intents):
    """With more tenants than a batch has room for, rotation reaches all of them in turn.

    One tenant has a big backlog, due before everyone else's work; every other tenant
    has three due intents. Each tenant's first intent is claimed within
    ⌈tenants / batch size⌉ + 1 batches.
    """
    big = submit(key="big")
    clone_intents(big, 2000)
    frozen_clock.advance(1)
    others = make_tenants(999, "t")
    give_due_work(submit(key="template"), others, 3)
    Intent.objects.filter(idempotency_key="template").delete()
    all_tenants = {big.tenant_id} | {t.id for t in others}
    assert len(all_tenants) == 1000

    first_batch: dict[int, int] = {}
    tenants = DueTenants()
    bound = math.ceil(len(all_tenants) / BATCH) + 1
    for number in range(1, bound + 1):
        batch = claim(tenants)
        assert batch is not None and len(batch.intent_ids) == BATCH
        for tenant_id in Intent.objects.filter(id__in=batch.intent_ids).values_list(
            "tenant_id", flat=True
        ):
            first_batch.setdefault(tenant_id, number)
    assert set(first_batch) == all_tenants
    assert max(first_batch.values()) <= bound
    leased = Intent.objects.filter(status=IntentStatus.IN_FLIGHT)
    assert leased.count() == bound * BATCH
    assert len(set(leased.values_list("id", flat=True))) == bound * BATCH


@pytest.mark.parametrize("count", [2, 7])
def test_shares_are_equal_when_the_batch_has_room(frozen_clock, submit, count):
    template = submit()
    tenants_ = make_tenants(count, "s")
    give_due_work(template, tenants_, 100)
    Intent.objects.filter(pk=template.pk).delete()
    batch = claim(DueTenants())
    assert batch is not None and len(batch.intent_ids) == BATCH
    per_tenant: dict[int, int] = {}
    for tenant_id in Intent.objects.filter(id__in=batch.intent_ids).values_list(
        "tenant_id", flat=True
    ):
        per_tenant[tenant_id] = per_tenant.get(tenant_id, 0) + 1
    assert len(per_tenant) == count
    assert max(per_tenant.values()) - min(per_tenant.values()) <= 1
