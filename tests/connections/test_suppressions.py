"""The suppression list: fed by providers' permanent recipient codes, enforced at intake."""

from __future__ import annotations

import pytest

from intents.models import Intent, IntentStatus, Suppression
from intents.suppressions import mask, recipient_hash
from portal.audit.models import AuditEvent
from tests.api.conftest import ApiClient, make_key

from .conftest import scripted_connection, sms_target

pytestmark = pytest.mark.django_db
NUMBER = "+15550100001"


@pytest.fixture
def bounced(engine):
    """A recipient the provider called permanently unreachable, through the engine."""
    engine.folders.connection("bouncy", scripted_connection("bouncy", "bounce"))
    engine.folders.target("sms_routed", sms_target("sms.routed", ["bouncy"]))
    engine.folders.sync()
    intent = engine.submit(to=NUMBER)
    engine.run()
    return intent


@pytest.fixture
def api(tenant):
    return ApiClient(make_key(tenant))


def post(api, key: str, to: str = NUMBER):
    body = {"target": "sms.routed", "payload": {"to": to, "text": "hi"}}
    return api.post("/api/v1/intents", body, idempotency_key=key)


def test_a_suppressing_result_puts_the_recipient_on_the_list_masked_and_hashed(
    bounced, tenant
) -> None:
    assert Intent.objects.get(pk=bounced.pk).status == IntentStatus.FAILED
    row = Suppression.objects.get()
    assert (row.tenant, row.channel, row.recipient_masked) == (tenant, "sms", "+1555•••0001")
    assert row.recipient_hash == recipient_hash("sms", NUMBER) != NUMBER
    assert (row.connection, row.provider_code) == ("bouncy", "21610")
    assert row.intent_public_id == bounced.public_id
    assert NUMBER not in str(Suppression.objects.values().get())
    event = AuditEvent.objects.get(action="suppression.added")
    assert event.data["recipient"] == "+1555•••0001"
    tenant.refresh_from_db()
    assert tenant.suppressed_channels == ["sms"]


def test_intake_refuses_a_suppressed_recipient_and_stores_nothing(bounced, api) -> None:
    before = Intent.objects.count()
    response = post(api, "again")
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "recipient_suppressed"
    assert "+1555•••0001" in problem["detail"] and NUMBER not in problem["detail"]
    assert Intent.objects.count() == before
    assert post(api, "another-number", to="+15550100002").status_code == 201


def test_another_tenant_is_not_affected(bounced, other_tenant) -> None:
    assert post(ApiClient(make_key(other_tenant)), "theirs").status_code == 201


def test_list_filters_and_lift(bounced, api) -> None:
    listed = api.get("/api/v1/suppressions", channel="sms", recipient=NUMBER).json()
    assert [(s["channel"], s["recipient"], s["provider_code"]) for s in listed] == [
        ("sms", "+1555•••0001", "21610")
    ]
    assert api.get("/api/v1/suppressions", channel="sms", recipient="+15550100002").json() == []
    assert len(api.get("/api/v1/suppressions").json()) == 1

    response = api.request("DELETE", f"/api/v1/suppressions/sms/{NUMBER}")
    assert response.status_code == 204
    assert not Suppression.objects.exists()
    lifted = AuditEvent.objects.get(action="suppression.lifted")
    assert lifted.actor_type == "api_key" and lifted.data["recipient"] == "+1555•••0001"
    assert post(api, "after-lift").status_code == 201

    again = api.request("DELETE", f"/api/v1/suppressions/sms/{NUMBER}")
    assert (again.status_code, again.json()["code"]) == (404, "not_found")


def test_bad_filters_are_400(api) -> None:
    assert api.get("/api/v1/suppressions", channel="fax").json()["code"] == "invalid_request"
    # Present but empty is no channel of the enum either (schemathesis found it answered).
    assert api.get("/api/v1/suppressions", channel="").json()["code"] == "invalid_request"
    assert api.get("/api/v1/suppressions", recipient=NUMBER).status_code == 400


def test_a_foreign_suppression_is_404(bounced, other_tenant) -> None:
    other = ApiClient(make_key(other_tenant))
    assert other.request("DELETE", f"/api/v1/suppressions/sms/{NUMBER}").status_code == 404
    assert other.get("/api/v1/suppressions").json() == []


@pytest.mark.parametrize(
    ("channel", "recipient", "masked"),
    [
        ("sms", "+1 555 010 0001", "+1555•••0001"),
        ("email", "Ann.Smith@Example.com", "a•••@example.com"),
        ("push", "dEv1ce-token-f00d", "dEv1c•••f00d"),
    ],
)
def test_masks(channel: str, recipient: str, masked: str) -> None:
    assert mask(channel, recipient) == masked
