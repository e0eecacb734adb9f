"""Replay planning: which open dead letters a filter matches, counted and sampled."""

from __future__ import annotations

import pytest

from deadletters import services
from deadletters.filters import ReplayFilters
from deadletters.models import DeadLetter
from intents.models import ReasonCode
from portal.errors import InvalidRequest, PermissionDenied
from tests.accounts.factories import create_staff_user

from .conftest import REJECTED, TRANSIENT

pytestmark = pytest.mark.django_db


@pytest.fixture
def backlog(frozen_clock, dead_letter, other_tenant):
    """Three rejected and one exhausted dead letter for acme, one rejected for globex."""
    rejected = [dead_letter(REJECTED) for _ in range(3)]
    frozen_clock.advance(3600)
    exhausted = dead_letter(TRANSIENT)
    foreign = dead_letter(REJECTED, tenant_=other_tenant)
    return {"rejected": rejected, "exhausted": exhausted, "foreign": foreign}


def ids(dead_letters):
    return [dl.pk for dl in dead_letters]


def test_plan_by_reason_counts_and_samples_oldest_first(backlog, settings):
    settings.REPLAY_PLAN_SAMPLE_SIZE = 2
    plan = services.replay_plan(filters=ReplayFilters.parse(reason_code="gateway_rejected"))
    assert plan.count == 4
    assert ids(plan.sample) == ids(backlog["rejected"][:2])


def test_plan_by_reason_target_tenant_and_time(backlog, frozen_clock, tenant):
    def count(**filters):
        return services.replay_plan(filters=ReplayFilters.parse(**filters)).count

    assert count() == 5
    assert count(reason_code=ReasonCode.ATTEMPTS_EXHAUSTED) == 1
    assert count(reason_code="gateway_rejected", tenant="acme") == 3
    assert count(tenant=str(tenant.pk)) == 4
    assert count(target_key="sms.fast") == 5
    assert count(target_key="sms.otp") == 0
    later = backlog["exhausted"].created_at
    assert count(since=later.isoformat()) == 2
    assert count(until=later.isoformat()) == 3
    plan = services.replay_plan(filters=ReplayFilters.parse(tenant="globex"))
    assert ids(plan.sample) == [backlog["foreign"].pk]


def test_plan_leaves_out_dead_letters_that_are_not_open(backlog, operator):
    dl = backlog["rejected"][0]
    services.replay_request_create(
        requested_by=operator[0], reason="fixed", dead_letter_ids=[dl.public_id]
    )
    services.dead_letter_resolve(
        dead_letter=backlog["rejected"][1], actor=operator[0], reason="sent by hand"
    )
    plan = services.replay_plan(filters=ReplayFilters.parse(reason_code="gateway_rejected"))
    assert plan.count == 2
    assert dl.pk not in ids(plan.sample)


def test_operator_restricted_to_a_tenant_plans_only_within_it(backlog, tenant, other_tenant):
    restricted, _ = create_staff_user("rita", roles=["operators"], tenants=[tenant])
    plan = services.replay_plan(filters=ReplayFilters(), user=restricted)
    assert plan.count == 4
    assert DeadLetter.objects.get(pk=backlog["foreign"].pk).pk not in ids(plan.sample)
    # Naming the other tenant does not widen the view.
    foreign = services.replay_plan(filters=ReplayFilters.parse(tenant="globex"), user=restricted)
    assert (foreign.count, foreign.sample) == (0, [])
    everyone, _ = create_staff_user("paula", roles=["operators"])
    assert services.replay_plan(filters=ReplayFilters(), user=everyone).count == 5


def test_plan_needs_an_operator_or_approver(backlog):
    auditor, _ = create_staff_user("aud", roles=["auditors"])
    with pytest.raises(PermissionDenied):
        services.replay_plan(filters=ReplayFilters(), user=auditor)
    approver, _ = create_staff_user("abel", roles=["approvers"])
    assert services.replay_plan(filters=ReplayFilters(), user=approver).count == 5


@pytest.mark.parametrize(
    "filters",
    [
        {"reason_code": "gateway_accepted"},
        {"reason_code": "nonsense"},
        {"tenant": "nobody"},
        {"since": "yesterday"},
        {"since": "2026-01-06", "until": "2026-01-05"},
    ],
)
def test_bad_filters_are_refused(db, filters):
    with pytest.raises(InvalidRequest):
        ReplayFilters.parse(**filters)
