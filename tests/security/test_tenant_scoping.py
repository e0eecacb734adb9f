"""Finding 1: a tenant-restricted operator sees nothing of another tenant on any staff
screen: the operations dashboard's figures and tables, and every admin list."""

from __future__ import annotations

import pytest
from django.contrib import admin

from tests.accounts.factories import create_staff_user, verified_login

pytestmark = pytest.mark.django_db


@pytest.fixture
def foreign_data(foreign):
    """Everything the dashboard counts, for the other tenant only."""
    timed_out = foreign.intent(
        status="pending", attempts_count=1, next_attempt_at=foreign.ago(minutes=5)
    )
    foreign.attempt(timed_out, outcome="timeout", finished_at=foreign.ago(minutes=10))
    accepted = foreign.intent(
        status="accepted", created_at=foreign.ago(minutes=30), finished_at=foreign.ago(minutes=29)
    )
    foreign.attempt(accepted, outcome="accepted", finished_at=foreign.ago(minutes=29))
    exhausted = foreign.intent(
        status="exhausted", created_at=foreign.ago(hours=2), finished_at=foreign.ago(hours=1)
    )
    dead_letter = foreign.dead_letter(exhausted)
    foreign.replay([dead_letter], status="pending")
    foreign.intent(status="in_flight", lease_expires_at=foreign.ago(seconds=5))
    return {"intents": [timed_out, accepted, exhausted], "dead_letter": dead_letter}


@pytest.fixture
def scoped_operator(client, tenant):
    user, device = create_staff_user("olga", roles=["operators"], tenants=[tenant])
    verified_login(client, user, device)
    return client


def test_dashboard_shows_no_figure_or_row_of_another_tenant(scoped_operator, foreign_data):
    response = scoped_operator.get("/admin/operations/")

    assert response.status_code == 200
    html = response.content.decode()
    for intent in foreign_data["intents"]:
        assert str(intent.public_id) not in html
    context = response.context
    backlog = context["backlog"]
    assert (backlog.due, backlog.scheduled, backlog.in_flight, backlog.expired_leases) == (
        0,
        0,
        0,
        0,
    )
    assert backlog.open_dead_letters_total == 0
    assert backlog.pending_replays == 0
    assert context["gateways"] == []
    assert context["dead_letters"] == []
    assert context["sla_rows"] == []
    assert [row["count"] for row in context["latency_rows"]] == [0]
    assert context["timed_out_count"] == 0


def test_dashboard_of_an_unrestricted_admin_still_counts_every_tenant(client, foreign_data):
    user, device = create_staff_user("pia", roles=["platform_admins"])
    verified_login(client, user, device)

    context = client.get("/admin/operations/").context

    assert context["timed_out_count"] == 1
    assert context["backlog"].open_dead_letters_total == 1
    assert context["backlog"].pending_replays == 1


def _changelist_urls():
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        yield f"/admin/{opts.app_label}/{opts.model_name}/", model_admin


def test_every_admin_list_hides_the_other_tenants_rows(scoped_operator, foreign_data, other_tenant):
    foreign_ids = [str(i.public_id) for i in foreign_data["intents"]]
    foreign_ids.append(str(foreign_data["dead_letter"].public_id))
    walked = 0
    for url, _ in _changelist_urls():
        response = scoped_operator.get(url)
        if response.status_code == 403:
            continue
        assert response.status_code == 200, url
        walked += 1
        html = response.content.decode()
        leaked = [public_id for public_id in foreign_ids if public_id in html]
        assert not leaked, f"{url} shows {leaked}"
        assert other_tenant.name not in html, url
    assert walked >= 3  # intents, dead letters, replay requests at least


@pytest.mark.parametrize(
    "roles", [["operators"], ["operators", "approvers"]], ids=["operator", "approver"]
)
def test_screens_beyond_the_lists_hide_the_other_tenant(client, tenant, foreign_data, roles):
    """The replay plan, the approvals queue and the foreign rows' own pages."""
    user, device = create_staff_user("olga", roles=roles, tenants=[tenant])
    verified_login(client, user, device)
    foreign_ids = [str(i.public_id) for i in foreign_data["intents"]]
    foreign_ids.append(str(foreign_data["dead_letter"].public_id))
    for url in (
        "/admin/deadletters/replayrequest/plan/?reason_code=attempts_exhausted",
        "/admin/deadletters/replayrequest/approvals/",
    ):
        response = client.get(url)
        if response.status_code == 403:
            continue
        assert response.status_code == 200, url
        html = response.content.decode()
        assert not [i for i in foreign_ids if i in html], url
    intent = foreign_data["intents"][0]
    dead_letter = foreign_data["dead_letter"]
    for url in (
        f"/admin/intents/intent/{intent.pk}/change/",
        f"/admin/deadletters/deadletter/{dead_letter.pk}/change/",
    ):
        response = client.get(url)
        assert response.status_code in (302, 404), url  # "does not exist" redirect
        assert str(intent.public_id) not in response.content.decode()
