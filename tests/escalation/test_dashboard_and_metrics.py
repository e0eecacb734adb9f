"""Open and recent episodes on the operations dashboard, and the open-episodes gauge."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from portal.escalation.tasks import evaluate_escalations
from tests.accounts.factories import create_staff_user, verified_login

from .conftest import REJECTED

BURST = """
[[rule]]
key = "dl-burst"
kind = "dead_letters.burst"
count = 1
window_minutes = 5
destinations = ["hook"]
"""


def open_gauge(client) -> dict[str, float]:
    text = client.get("/metrics").content.decode()
    (family,) = [
        f
        for f in text_string_to_metric_families(text)
        if f.name == "portal_escalation_episodes_open"
    ]
    return {sample.labels["kind"]: sample.value for sample in family.samples}


def test_episodes_on_the_dashboard_and_in_the_gauge(
    client, registry, dead_letter, frozen_clock, receiver
) -> None:
    registry(BURST)
    dead_letter(REJECTED)
    evaluate_escalations()
    user, device = create_staff_user("olga", roles=["operators"])
    verified_login(client, user, device)

    page = client.get("/admin/operations/").content.decode()
    assert "1 dead letter opened in 5 min for target sms.fast" in page
    assert "trigger → hook: sent" in page
    assert open_gauge(client) == {"dead_letters.burst": 1.0}

    frozen_clock.advance(6 * 60)
    evaluate_escalations()

    page = client.get("/admin/operations/").content.decode()
    assert "resolve → hook: sent" in page
    assert open_gauge(client) == {}


def test_a_viewer_of_some_tenants_sees_no_escalations(
    client, registry, dead_letter, frozen_clock, receiver, tenant
) -> None:
    registry(BURST)
    dead_letter(REJECTED)
    evaluate_escalations()
    user, device = create_staff_user("tina", roles=["operators"], tenants=[tenant])
    verified_login(client, user, device)

    page = client.get("/admin/operations/").content.decode()
    assert "dead letter opened" not in page
    assert "shown to operators who see all tenants" in page


def test_rules_and_episodes_are_read_only_in_the_admin(
    client, registry, dead_letter, frozen_clock, receiver
) -> None:
    from portal.escalation.models import Episode, EscalationRule

    registry(BURST)
    dead_letter(REJECTED)
    evaluate_escalations()
    user, device = create_staff_user("olga", roles=["operators"])
    verified_login(client, user, device)
    episode = Episode.objects.get()
    rule = EscalationRule.objects.get()

    listing = client.get("/admin/escalation/episode/").content.decode()
    detail = client.get(f"/admin/escalation/episode/{episode.pk}/change/").content.decode()
    rule_page = client.get(f"/admin/escalation/escalationrule/{rule.pk}/change/").content.decode()

    assert episode.dedup_key in listing
    assert "trigger → hook: sent, 1 attempt(s)" in detail
    assert "dead_letters.burst" in rule_page
    assert client.post(f"/admin/escalation/episode/{episode.pk}/delete/").status_code == 403
