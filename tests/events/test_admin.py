"""Operators see each tenant's endpoints and deliveries, re-enable an endpoint (audited),
and find a failed delivery's dead letter to replay."""

from __future__ import annotations

import pytest

from intents.dispatch import run_once
from portal.audit.models import AuditEvent
from portal.events.models import WebhookEndpoint, WebhookEvent
from tests.accounts.factories import staff_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def gone_endpoint(frozen_clock, scripted, submit, make_endpoint, receiver):
    """An endpoint that answered 410: disabled, its delivery a dead letter."""
    receiver.default = 410
    make_endpoint(description="orders")
    submit()
    run_once()
    return WebhookEndpoint.objects.get()


def test_operators_see_endpoints_and_deliveries_without_secrets(gone_endpoint):
    client = staff_client("olga", ["operators"])
    listing = client.get("/admin/events/webhookendpoint/").content.decode()
    assert gone_endpoint.url in listing and "disabled" in listing
    detail = client.get(f"/admin/events/webhookendpoint/{gone_endpoint.pk}/change/")
    text = detail.content.decode()
    assert "intent.accepted" in text and "410" in text
    assert "dead letter: replay" in text
    assert gone_endpoint.secret_sealed.removeprefix("sealed:") not in text
    event = WebhookEvent.objects.get()
    deliveries = client.get("/admin/events/webhookevent/").content.decode()
    assert "intent.accepted" in deliveries and "failed" in deliveries
    # The dead-letter list finds the delivery's letter by the event id.
    letters = client.get("/admin/deadletters/deadletter/", {"q": str(event.public_id)})
    assert "gateway_rejected" in letters.content.decode()


def test_an_operator_re_enables_an_endpoint_and_it_is_audited(gone_endpoint):
    client = staff_client("olga", ["operators"])
    response = client.post(
        "/admin/events/webhookendpoint/",
        {"action": "enable_selected", "_selected_action": [gone_endpoint.pk]},
        follow=True,
    )
    assert "1 endpoint(s) re-enabled." in response.content.decode()
    gone_endpoint.refresh_from_db()
    assert gone_endpoint.status == "enabled" and gone_endpoint.disabled_at is None
    audit = AuditEvent.objects.get(action="webhook_endpoint.enabled")
    assert audit.actor_label == "olga" and audit.data["previous_reason"] == "gone"


def test_auditors_may_look_but_not_re_enable(gone_endpoint):
    client = staff_client("ada", ["auditors"])
    assert client.get("/admin/events/webhookendpoint/").status_code == 200
    client.post(
        "/admin/events/webhookendpoint/",
        {"action": "enable_selected", "_selected_action": [gone_endpoint.pk]},
    )
    gone_endpoint.refresh_from_db()
    assert gone_endpoint.status == "disabled"


def test_tenant_scoped_staff_see_only_their_tenants_endpoints(gone_endpoint, other_tenant):
    client = staff_client("tim", ["operators"], tenants=[other_tenant])
    assert gone_endpoint.url not in client.get("/admin/events/webhookendpoint/").content.decode()
    assert client.get(f"/admin/events/webhookendpoint/{gone_endpoint.pk}/change/").status_code in (
        302,
        404,
    )
    assert "intent.accepted" not in client.get("/admin/events/webhookevent/").content.decode()


def test_the_disabled_endpoints_gauge_counts_by_reason(gone_endpoint):
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from portal.observability.exposition import scrape_registry

    text = generate_latest(scrape_registry()).decode()
    [family] = [
        f
        for f in text_string_to_metric_families(text)
        if f.name == "portal_webhook_endpoints_disabled"
    ]
    values = {sample.labels["reason"]: sample.value for sample in family.samples}
    assert values == {"gone": 1, "failing": 0, "client": 0, "operator": 0}
