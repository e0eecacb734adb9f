"""Intent changes write their events in the transaction of the change, and the engine
delivers them, signed per Standard Webhooks (checked by the ``standardwebhooks``
package, not our code), to a real receiver."""

from __future__ import annotations

import json

import pytest
from django.db import transaction
from standardwebhooks import Webhook

from intents.dispatch import run_once
from intents.models import Intent, IntentStatus
from intents.services import intent_cancel
from portal.events.models import WebhookEvent

pytestmark = pytest.mark.django_db


def verified(receiver, secret: str) -> list[dict]:
    """Every request the receiver got, verified with ``secret``; their events."""
    hook = Webhook(secret)
    return [hook.verify(r.body, r.headers) for r in receiver.received]


def test_accepted_intent_is_delivered_as_a_signed_event(
    frozen_clock, scripted, submit, make_endpoint, receiver
):
    endpoint = make_endpoint()
    intent = submit()
    # The client's intent is accepted, which writes its event, due at once: the same
    # run delivers it.
    assert run_once() == 2
    event = WebhookEvent.objects.get()
    assert event.type == "intent.accepted"
    [body] = verified(receiver, endpoint["secret"])
    assert body["type"] == "intent.accepted"
    assert body["data"]["id"] == str(intent.public_id)
    assert body["data"]["status"] == "accepted"
    assert body["timestamp"] == "2026-01-05T12:00:00Z"
    [request] = receiver.received
    assert request.headers["webhook-id"] == str(event.public_id)
    assert request.headers["content-type"] == "application/json"
    # The delivery raised no event of its own.
    assert WebhookEvent.objects.count() == 1
    delivery = Intent.objects.get(public_id=event.public_id)
    assert delivery.internal and delivery.status == IntentStatus.ACCEPTED


def test_retries_keep_the_webhook_id(frozen_clock, scripted, submit, make_endpoint, receiver):
    endpoint = make_endpoint()
    receiver.script = [500]
    submit()
    assert run_once() == 2  # the intent, then its event: 500, retried in 5 s
    assert run_once() == 0
    frozen_clock.advance(5)
    run_once()  # 200
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert len(verified(receiver, endpoint["secret"])) == 2
    event = WebhookEvent.objects.get()
    delivery = Intent.objects.get(public_id=event.public_id)
    assert delivery.status == IntentStatus.ACCEPTED
    assert delivery.attempts_count == 2


def test_event_types_filter_and_disabled_endpoints_get_nothing(
    frozen_clock, scripted, submit, make_endpoint, hooks_api
):
    only_failures = make_endpoint(event_types=["intent.failed"])
    everything = make_endpoint()
    disabled = make_endpoint()
    hooks_api.request(
        "PATCH",
        f"/api/v1/webhook-endpoints/{disabled['id']}",
        data=json.dumps({"status": "disabled"}),
        content_type="application/json",
    )
    submit()  # accepted
    submit("+15550100400")  # failed
    run_once()
    by_endpoint = {
        str(e.endpoint.public_id): sorted(
            WebhookEvent.objects.filter(endpoint=e.endpoint).values_list("type", flat=True)
        )
        for e in WebhookEvent.objects.select_related("endpoint")
    }
    assert by_endpoint == {
        only_failures["id"]: ["intent.failed"],
        everything["id"]: ["intent.accepted", "intent.failed"],
    }


def test_cancel_writes_its_event_in_its_transaction(frozen_clock, tenant, submit, make_endpoint):
    make_endpoint()
    intent = submit()
    intent_cancel(tenant=tenant, public_id=intent.public_id)
    assert list(WebhookEvent.objects.values_list("type", flat=True)) == ["intent.cancelled"]


def test_a_rolled_back_change_leaves_no_event(frozen_clock, tenant, submit, make_endpoint):
    make_endpoint()
    intent = submit()

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        intent_cancel(tenant=tenant, public_id=intent.public_id)
        assert WebhookEvent.objects.count() == 1  # written with the change...
        raise Abort
    # ...and gone with it, its delivery too.
    assert WebhookEvent.objects.count() == 0
    assert not Intent.objects.filter(internal=True).exists()
    intent.refresh_from_db()
    assert intent.status == IntentStatus.PENDING


def test_deliveries_are_not_the_clients_intents(frozen_clock, scripted, submit, make_endpoint, api):
    make_endpoint()
    intent = submit()
    run_once()
    event = WebhookEvent.objects.get()
    listed = json.loads(api.get("/api/v1/intents").content)["results"]
    assert [row["id"] for row in listed] == [str(intent.public_id)]
    assert api.get(f"/api/v1/intents/{event.public_id}").status_code == 404


def test_receipts_and_reopen_raise_their_events(frozen_clock, scripted, submit, make_endpoint):
    from gateways.base import ParsedReceipt
    from intents.receipts import receipt_apply
    from intents.services import intent_reopen

    make_endpoint(event_types=["intent.delivered", "intent.undelivered", "intent.reopened"])
    delivered = submit()
    undelivered = submit("+15550100002")
    run_once()
    for intent, status in ((delivered, "delivered"), (undelivered, "undelivered")):
        intent.refresh_from_db()
        receipt_apply(
            connection=intent.connection,
            receipt=ParsedReceipt(message_id=intent.gateway_message_id, status=status),
        )
    undelivered.refresh_from_db()
    intent_reopen(intent=undelivered)
    events = {
        (e.type, e.intent.payload_sha256 and json.loads(bytes(e.intent.payload))["data"]["id"])
        for e in WebhookEvent.objects.select_related("intent")
    }
    assert events == {
        ("intent.delivered", str(delivered.public_id)),
        ("intent.undelivered", str(undelivered.public_id)),
        ("intent.reopened", str(undelivered.public_id)),
    }
