"""A client never sees another tenant's data: 404 (never 403) for a foreign id, lists filtered."""

from __future__ import annotations

import json

import pytest

from intents.models import Attempt, AttemptOutcome, Intent, IntentStatus

from .conftest import SMS_OTP_BODY, assert_problem


@pytest.fixture
def foreign_intent(other_api, targets, frozen_clock) -> dict:
    response = other_api.post("/api/v1/intents", SMS_OTP_BODY, idempotency_key="theirs")
    assert response.status_code == 201
    intent = json.loads(response.content)
    Attempt.objects.create(
        intent=Intent.objects.get(public_id=intent["id"]),
        number=1,
        started_at=frozen_clock.now,
        finished_at=frozen_clock.now,
        duration_ms=0,
        outcome=AttemptOutcome.TIMEOUT,
    )
    return intent


def test_foreign_intent_is_404_like_an_unknown_one(api, foreign_intent):
    unknown_id = "0b7e5bd4-54a5-4bd6-9d43-8bd3e0a5f0a1"
    unknown = json.loads(api.get(f"/api/v1/intents/{unknown_id}").content)
    foreign = assert_problem(api.get(f"/api/v1/intents/{foreign_intent['id']}"), 404, "not_found")
    # Word for word the same answer as for an id that never existed.
    foreign["detail"] = foreign["detail"].replace(foreign_intent["id"], unknown_id)
    del foreign["request_id"], unknown["request_id"]
    assert foreign == unknown


def test_foreign_attempts_are_404(api, foreign_intent):
    response = api.get(f"/api/v1/intents/{foreign_intent['id']}/attempts")
    assert_problem(response, 404, "not_found")


def test_foreign_cancel_is_404_and_changes_nothing(api, foreign_intent):
    response = api.post(f"/api/v1/intents/{foreign_intent['id']}/cancel")
    assert_problem(response, 404, "not_found")
    intent = Intent.objects.get(public_id=foreign_intent["id"])
    assert intent.status == IntentStatus.PENDING
    assert intent.cancel_requested is False


def test_lists_never_leak_another_tenants_intents(api, other_api, submit, foreign_intent):
    mine = json.loads(submit().content)
    for params in ({}, {"status": "pending"}, {"target": "sms.otp"}, {"limit": "1"}):
        page = json.loads(api.get("/api/v1/intents", **params).content)
        assert [i["id"] for i in page["results"]] == [mine["id"]], params
        assert page["next"] is None
    theirs = json.loads(other_api.get("/api/v1/intents").content)
    assert [i["id"] for i in theirs["results"]] == [foreign_intent["id"]]


def test_a_cursor_from_another_tenant_reveals_nothing(api, other_api, targets, frozen_clock):
    for n in range(3):
        other_api.post("/api/v1/intents", SMS_OTP_BODY, idempotency_key=f"theirs-{n}")
        frozen_clock.advance(1)
    their_next = json.loads(other_api.get("/api/v1/intents", limit=1).content)["next"]
    assert their_next is not None
    page = json.loads(api.client.get(their_next, headers=api._headers(None)).content)
    assert page == {"results": [], "next": None}


def test_idempotency_key_of_another_tenant_does_not_replay_their_intent(api, foreign_intent):
    response = api.post("/api/v1/intents", SMS_OTP_BODY, idempotency_key="theirs")
    assert response.status_code == 201
    assert json.loads(response.content)["id"] != foreign_intent["id"]


def test_targets_lists_differ_per_tenant(api, other_api, other_tenant, targets):
    other_tenant.allow_all_targets = False
    other_tenant.allowed_targets = ["push.alert"]
    other_tenant.save(update_fields=["allow_all_targets", "allowed_targets"])
    assert [t["key"] for t in json.loads(other_api.get("/api/v1/targets").content)] == [
        "push.alert"
    ]
    assert len(json.loads(api.get("/api/v1/targets").content)) == 4
