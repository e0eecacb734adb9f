"""Rendering built cheaply: the intent representation written out, the input serializer's
shallow-copied fields."""

from __future__ import annotations

import datetime as dt

import pytest

from intents.models import DeliveryStatus, Intent, IntentStatus, ReasonCode
from intents.serializers import IntentOutputSerializer, intent_representation
from intents.services import intent_submit

pytestmark = pytest.mark.django_db


def test_the_representation_is_what_the_serializer_renders_in_every_state(
    tenant, targets, frozen_clock
):
    intent = intent_submit(
        tenant=tenant,
        idempotency_key="k",
        target_key="sms.otp",
        contract_version="1.0",
        payload={"to": "+15550100001", "text": "hi"},
        metadata={"order": "A-17"},
    ).intent
    pending = intent_representation(intent)
    assert pending == dict(IntentOutputSerializer(intent).data)
    assert pending["reason_code"] is None and pending["gateway_message_id"] is None

    intent.status = IntentStatus.ACCEPTED
    intent.reason_code = ReasonCode.GATEWAY_ACCEPTED
    intent.gateway_message_id = "gw-1"
    intent.finished_at = frozen_clock.now + dt.timedelta(seconds=3)
    intent.next_attempt_at = None
    intent.attempts_count = 2
    accepted = intent_representation(intent)
    assert accepted == dict(IntentOutputSerializer(intent).data)
    assert accepted["reason_code"] == "gateway_accepted"
    assert accepted["finished_at"] == "2026-01-05T12:00:03Z"
    assert pending != accepted  # nothing of one rendering leaked into the other

    # Every optional field set, read back from the database as a listing would.
    intent.connection = "primary"
    intent.delivery_status = DeliveryStatus.DELIVERED
    intent.delivered_at = frozen_clock.now + dt.timedelta(seconds=4, microseconds=250)
    intent.cancel_requested = True
    intent.generation = 2
    intent.save()
    stored = Intent.objects.get(pk=intent.pk)
    delivered = intent_representation(stored)
    assert delivered == dict(IntentOutputSerializer(stored).data)
    assert delivered["delivered_at"] == "2026-01-05T12:00:04.000250Z"
    assert delivered["delivery_status"] == "delivered" and delivered["connection"] == "primary"
    assert [type(value) for value in delivered.values()] == [
        type(value) for value in IntentOutputSerializer(stored).data.values()
    ]


def test_input_serializers_never_share_their_bound_fields():
    from intents.serializers import IntentCreateInputSerializer

    good = IntentCreateInputSerializer(data={"target": "sms.otp", "payload": {}})
    bad = IntentCreateInputSerializer(data={"target": "No Such", "payload": {}, "x": 1})
    assert good.is_valid() and not bad.is_valid()
    assert set(bad.errors) == {"target", "x"}
    assert good.fields["target"] is not bad.fields["target"]
    assert good.fields["target"].parent is good and bad.fields["target"].parent is bad
    assert good.validated_data == {"target": "sms.otp", "payload": {}}
