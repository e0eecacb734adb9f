"""GET one, list (filters, cursor pages), attempts, cancel and the targets list."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from intents.models import Attempt, AttemptOutcome, Intent, IntentStatus, ReasonCode

from .conftest import SMS_OTP_BODY, assert_problem
from .test_intent_create import INTENT_FIELDS

UNKNOWN_ID = "0b7e5bd4-54a5-4bd6-9d43-8bd3e0a5f0a1"


def _created(response) -> dict:
    assert response.status_code == 201, response.content
    return json.loads(response.content)


# --- GET /intents/{id}


def test_get_returns_the_intent_as_created(api, submit, frozen_clock):
    created = _created(submit())
    response = api.get(f"/api/v1/intents/{created['id']}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == created


def test_get_shows_terminal_fields(api, submit, frozen_clock):
    created = _created(submit())
    Intent.objects.filter(public_id=created["id"]).update(
        status=IntentStatus.ACCEPTED,
        reason_code=ReasonCode.GATEWAY_ACCEPTED,
        gateway_message_id="gw-1",
        attempts_count=1,
        next_attempt_at=None,
        finished_at=dt.datetime(2026, 1, 5, 12, 0, 2, tzinfo=dt.UTC),
    )
    intent = json.loads(api.get(f"/api/v1/intents/{created['id']}").content)
    assert set(intent) == INTENT_FIELDS
    assert intent["status"] == "accepted"
    assert intent["reason_code"] == "gateway_accepted"
    assert intent["gateway_message_id"] == "gw-1"
    assert intent["attempts"] == 1
    assert intent["next_attempt_at"] is None
    assert intent["finished_at"] == "2026-01-05T12:00:02Z"


def test_unknown_intent_is_404(api, targets):
    body = assert_problem(api.get(f"/api/v1/intents/{UNKNOWN_ID}"), 404, "not_found")
    assert "errors" not in body


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "0b7e5bd4-54a5-4bd6-9d43"])
@pytest.mark.parametrize("suffix", ["", "/attempts", "/cancel"])
def test_malformed_id_is_a_404_problem(api, targets, bad_id, suffix):
    path = f"/api/v1/intents/{bad_id}{suffix}"
    response = api.post(path) if suffix == "/cancel" else api.get(path)
    assert_problem(response, 404, "not_found")


# --- GET /intents


def _submit_at(submit, frozen_clock, count: int, *, step: float = 1.0, **body) -> list[dict]:
    intents = []
    for _ in range(count):
        intents.append(_created(submit({**SMS_OTP_BODY, **body} if body else None)))
        frozen_clock.advance(step)
    return intents


def test_list_is_newest_first_with_next_null_on_the_only_page(api, submit, frozen_clock):
    intents = _submit_at(submit, frozen_clock, 3)
    response = api.get("/api/v1/intents")
    assert response.status_code == 200
    page = json.loads(response.content)
    assert set(page) == {"results", "next"}
    assert page["next"] is None
    assert [i["id"] for i in page["results"]] == [i["id"] for i in reversed(intents)]
    assert all(set(item) == INTENT_FIELDS for item in page["results"])
    assert page["results"][0] == intents[-1]


def test_empty_list(api, targets):
    assert json.loads(api.get("/api/v1/intents").content) == {"results": [], "next": None}


def test_cursor_pages_cover_every_intent_once_and_end_with_null(api, submit, frozen_clock):
    intents = _submit_at(submit, frozen_clock, 5)
    # Two submitted in the same microsecond: the cursor must still split them correctly.
    intents += _submit_at(submit, frozen_clock, 2, step=0)
    seen: list[str] = []
    page = json.loads(api.get("/api/v1/intents", limit=2).content)
    pages = 1
    while page["next"] is not None:
        seen += [i["id"] for i in page["results"]]
        assert len(page["results"]) == 2
        url = urlsplit(page["next"])
        assert url.path == "/api/v1/intents"
        assert parse_qs(url.query)["limit"] == ["2"]
        page = json.loads(api.client.get(page["next"], headers=api._headers(None)).content)
        pages += 1
    seen += [i["id"] for i in page["results"]]
    assert pages == 4
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == {i["id"] for i in intents}
    created = [Intent.objects.get(public_id=i).created_at for i in seen]
    assert created == sorted(created, reverse=True)


def test_exact_multiple_of_limit_ends_with_an_empty_next(api, submit, frozen_clock):
    _submit_at(submit, frozen_clock, 2)
    page = json.loads(api.get("/api/v1/intents", limit=2).content)
    assert len(page["results"]) == 2
    assert page["next"] is None


def test_cursor_stays_correct_while_new_intents_arrive(api, submit, frozen_clock):
    older = _submit_at(submit, frozen_clock, 3)
    first = json.loads(api.get("/api/v1/intents", limit=2).content)
    _submit_at(submit, frozen_clock, 2)  # newer ones do not shift the next page
    second = json.loads(api.client.get(first["next"], headers=api._headers(None)).content)
    assert [i["id"] for i in second["results"]] == [older[0]["id"]]
    assert second["next"] is None


def test_list_filters_by_status_target_and_creation_time(api, submit, frozen_clock):
    first = _created(submit())
    frozen_clock.advance(60)
    fast = _created(submit({**SMS_OTP_BODY, "target": "sms.fast"}))
    frozen_clock.advance(60)
    last = _created(submit())
    api.post(f"/api/v1/intents/{last['id']}/cancel")

    def ids(**params) -> list[str]:
        response = api.get("/api/v1/intents", **params)
        assert response.status_code == 200, response.content
        return [i["id"] for i in json.loads(response.content)["results"]]

    assert ids(status="cancelled") == [last["id"]]
    assert ids(status="pending") == [fast["id"], first["id"]]
    assert ids(target="sms.fast") == [fast["id"]]
    assert ids(target="sms.otp", status="pending") == [first["id"]]
    assert ids(created_after="2026-01-05T12:00:00Z") == [last["id"], fast["id"]]
    assert ids(created_before="2026-01-05T12:02:00Z") == [fast["id"], first["id"]]
    assert ids(created_after="2026-01-05T12:00:00Z", created_before="2026-01-05T12:02:00Z") == [
        fast["id"]
    ]
    # Offsets are honoured; a naive time is UTC.
    assert ids(created_after="2026-01-05T13:00:30+01:00") == [last["id"], fast["id"]]
    assert ids(created_before="2026-01-05T12:01:00") == [first["id"]]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"status": "done"}, "status"),
        ({"target": "Not a key!"}, "target"),
        ({"target": "a\x00b"}, "target"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "bm9wZQ"}, "cursor"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_before": ""}, "created_before"),
        ({"stauts": "pending"}, "stauts"),
    ],
)
def test_bad_list_parameters_are_400_naming_the_parameter(api, targets, params, parameter):
    body = assert_problem(api.get("/api/v1/intents", **params), 400, "invalid_request")
    assert {e["parameter"] for e in body["errors"]} == {parameter}
    assert all(e["message"] for e in body["errors"])


def test_list_query_count_does_not_grow_with_the_page(
    api, submit, frozen_clock, django_assert_max_num_queries
):
    _submit_at(submit, frozen_clock, 10)
    # auth lookup, last-used touch is skipped within a minute, the page itself
    with django_assert_max_num_queries(4):
        response = api.get("/api/v1/intents", limit=10)
    assert len(json.loads(response.content)["results"]) == 10


# --- GET /intents/{id}/attempts


def test_attempts_list_shape_oldest_first(api, submit, frozen_clock):
    created = _created(submit())
    intent = Intent.objects.get(public_id=created["id"])
    start = dt.datetime(2026, 1, 5, 12, 0, 1, tzinfo=dt.UTC)
    Attempt.objects.create(
        intent=intent,
        number=2,
        started_at=start + dt.timedelta(seconds=3),
        finished_at=start + dt.timedelta(seconds=3, milliseconds=250),
        duration_ms=250,
        outcome=AttemptOutcome.ACCEPTED,
        gateway_status=202,
        gateway_message_id="gw-9",
    )
    Attempt.objects.create(
        intent=intent,
        number=1,
        started_at=start,
        finished_at=start + dt.timedelta(seconds=1),
        duration_ms=1000,
        outcome=AttemptOutcome.REJECTED_TRANSIENT,
        gateway_status=503,
        error="gateway answered 503",
    )
    response = api.get(f"/api/v1/intents/{created['id']}/attempts")
    assert response.status_code == 200
    assert json.loads(response.content) == [
        {
            "number": 1,
            "outcome": "rejected_transient",
            "started_at": "2026-01-05T12:00:01Z",
            "finished_at": "2026-01-05T12:00:02Z",
            "duration_ms": 1000,
            "gateway_status": 503,
            "error": "gateway answered 503",
        },
        {
            "number": 2,
            "outcome": "accepted",
            "started_at": "2026-01-05T12:00:04Z",
            "finished_at": "2026-01-05T12:00:04.250000Z",
            "duration_ms": 250,
            "gateway_status": 202,
            "error": None,
        },
    ]


def test_attempts_of_a_fresh_intent_is_an_empty_list(api, submit):
    created = _created(submit())
    assert json.loads(api.get(f"/api/v1/intents/{created['id']}/attempts").content) == []


def test_attempts_of_an_unknown_intent_is_404(api, targets):
    assert_problem(api.get(f"/api/v1/intents/{UNKNOWN_ID}/attempts"), 404, "not_found")


# --- POST /intents/{id}/cancel


def test_cancel_pending_is_200_cancelled(api, submit, frozen_clock):
    created = _created(submit())
    frozen_clock.advance(5)
    response = api.post(f"/api/v1/intents/{created['id']}/cancel")
    assert response.status_code == 200, response.content
    intent = json.loads(response.content)
    assert set(intent) == INTENT_FIELDS
    assert intent["status"] == "cancelled"
    assert intent["reason_code"] == "cancelled_by_client"
    assert intent["cancel_requested"] is True
    assert intent["finished_at"] == "2026-01-05T12:00:05Z"
    assert intent["next_attempt_at"] is None
    assert json.loads(api.get(f"/api/v1/intents/{created['id']}").content) == intent


def test_cancel_in_flight_marks_cancel_requested(api, submit, frozen_clock):
    created = _created(submit())
    Intent.objects.filter(public_id=created["id"]).update(
        status=IntentStatus.IN_FLIGHT, lease_owner="worker-1"
    )
    response = api.post(f"/api/v1/intents/{created['id']}/cancel")
    assert response.status_code == 200
    intent = json.loads(response.content)
    assert intent["status"] == "in_flight"
    assert intent["cancel_requested"] is True
    assert intent["finished_at"] is None
    assert intent["reason_code"] is None
    # Asking again while it is still in flight is harmless.
    assert api.post(f"/api/v1/intents/{created['id']}/cancel").status_code == 200


@pytest.mark.parametrize(
    "status",
    [
        IntentStatus.ACCEPTED,
        IntentStatus.FAILED,
        IntentStatus.EXHAUSTED,
        IntentStatus.EXPIRED,
        IntentStatus.CANCELLED,
    ],
)
def test_cancel_terminal_is_409_already_terminal(api, submit, status):
    created = _created(submit())
    Intent.objects.filter(public_id=created["id"]).update(status=status, next_attempt_at=None)
    body = assert_problem(
        api.post(f"/api/v1/intents/{created['id']}/cancel"), 409, "already_terminal"
    )
    assert status.value in body["detail"]
    assert Intent.objects.get(public_id=created["id"]).status == status


def test_cancel_ignores_no_body_and_needs_no_idempotency_key(api, submit):
    created = _created(submit())
    response = api.post(f"/api/v1/intents/{created['id']}/cancel", raw=b"")
    assert response.status_code == 200


def test_cancel_unknown_is_404(api, targets):
    assert_problem(api.post(f"/api/v1/intents/{UNKNOWN_ID}/cancel"), 404, "not_found")


# --- GET /targets


def test_targets_lists_every_target_with_version_gateway_and_schema(api, targets):
    response = api.get("/api/v1/targets")
    assert response.status_code == 200
    listed = json.loads(response.content)
    assert [t["key"] for t in listed] == ["http.webhook", "push.alert", "sms.fast", "sms.otp"]
    otp = listed[-1]
    assert otp == {
        "key": "sms.otp",
        "version": "1.2",
        "gateway": "sms",
        "description": "One-time password by SMS",
        "attempt_timeout_s": 5.0,
        "acceptance_deadline_s": 600.0,
        "retry": {
            "strategy": "exponential_jitter",
            "initial_delay_s": 1.0,
            "multiplier": 2.0,
            "max_delay_s": 60.0,
            "max_attempts": 6,
        },
        "payload_schema": {
            "type": "object",
            "required": ["to", "text"],
            "additionalProperties": False,
            "properties": {
                "to": {"type": "string", "pattern": "^\\+[1-9][0-9]{7,14}$"},
                "text": {"type": "string", "maxLength": 1600},
            },
        },
    }


def test_targets_lists_only_those_allowed_for_the_tenant(api, tenant, targets):
    tenant.allow_all_targets = False
    tenant.allowed_targets = ["sms.otp", "push.alert", "no.such"]
    tenant.save(update_fields=["allow_all_targets", "allowed_targets"])
    listed = json.loads(api.get("/api/v1/targets").content)
    assert [t["key"] for t in listed] == ["push.alert", "sms.otp"]


def test_targets_list_is_empty_without_a_registry(api, tenant):
    assert json.loads(api.get("/api/v1/targets").content) == []
