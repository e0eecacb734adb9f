"""The admin: connections read-only with their health; suppressions listed and lifted."""

from __future__ import annotations

import pytest

from gateways.models import Connection
from intents.models import Suppression
from portal.audit.models import AuditEvent
from tests.accounts.factories import staff_client

from .conftest import scripted_connection, sms_target

pytestmark = pytest.mark.django_db


@pytest.fixture
def traffic(engine):
    """A failing connection that carried twenty calls (its circuit is open), and a
    bounced recipient on the list."""
    engine.folders.connection("down", scripted_connection("down", "down"))
    engine.folders.connection("bouncy", scripted_connection("bouncy", "bounce"))
    engine.folders.target("sms_routed", sms_target("sms.routed", ["down"]))
    engine.folders.target("sms_bounce", sms_target("sms.bounce", ["bouncy"]))
    engine.folders.sync()
    for _ in range(20):
        engine.submit()
    engine.submit(target="sms.bounce", to="+15550100009")
    engine.run()
    return engine


def test_connections_are_listed_with_their_health_and_nobody_may_change_them(traffic) -> None:
    client = staff_client("olga", ["operators"])
    page = client.get("/admin/gateways/connection/").content.decode()
    assert "down" in page and "bouncy" in page
    assert "open" in page and "20 / 20" in page
    connection = Connection.objects.get(key="down")
    detail = client.get(f"/admin/gateways/connection/{connection.pk}/change/")
    assert detail.status_code == 200
    text = detail.content.decode()
    assert "circuit open" in text and "total: 20 calls, 20 failures" in text
    assert client.get("/admin/gateways/connection/add/").status_code == 403
    health = client.get("/admin/gateways/connectionhealth/").content.decode()
    assert "down" in health


def test_an_operator_lifts_a_suppression_and_it_is_audited(traffic) -> None:
    row = Suppression.objects.get()
    client = staff_client("olga", ["operators"])
    listing = client.get("/admin/intents/suppression/").content.decode()
    assert "+1555•••0009" in listing
    response = client.post(
        "/admin/intents/suppression/",
        {"action": "lift", "_selected_action": [row.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Lifted 1 suppression(s)." in response.content.decode()
    assert not Suppression.objects.exists()
    event = AuditEvent.objects.get(action="suppression.lifted")
    assert event.actor_label == "olga"


def test_an_auditor_sees_suppressions_but_cannot_lift(traffic) -> None:
    row = Suppression.objects.get()
    client = staff_client("aude", ["auditors"])
    assert client.get("/admin/intents/suppression/").status_code == 200
    client.post("/admin/intents/suppression/", {"action": "lift", "_selected_action": [row.pk]})
    assert Suppression.objects.exists()
