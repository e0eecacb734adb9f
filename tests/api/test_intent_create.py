"""POST /api/v1/intents: every row of CONTRACT.md's submission table."""

from __future__ import annotations

import json

import pytest

from intents.models import Intent

from .conftest import SMS_OTP_BODY, assert_problem

INTENT_FIELDS = {
    "id",
    "idempotency_key",
    "target",
    "contract_version",
    "status",
    "attempts",
    "next_attempt_at",
    "deadline_at",
    "created_at",
    "updated_at",
    "finished_at",
    "reason_code",
    "gateway_message_id",
    "cancel_requested",
    "generation",
    "payload_sha256",
    "metadata",
    # v1.1
    "connection",
    "delivery_status",
    "delivered_at",
}


def test_created_is_201_with_location_and_the_documented_representation(api, targets, frozen_clock):
    body = {
        **SMS_OTP_BODY,
        "contract_version": "1.0",
        "deadline_seconds": 120,
        "metadata": {"order": "A-17"},
    }
    response = api.post("/api/v1/intents", body, idempotency_key="order-A-17")

    assert response.status_code == 201, response.content
    assert response["Content-Type"] == "application/json"
    intent = json.loads(response.content)
    assert set(intent) == INTENT_FIELDS
    assert response["Location"] == f"http://testserver/api/v1/intents/{intent['id']}"
    assert "Idempotent-Replayed" not in response
    assert intent == {
        "id": intent["id"],
        "idempotency_key": "order-A-17",
        "target": "sms.otp",
        "contract_version": "1.2",
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": "2026-01-05T12:00:00Z",
        "deadline_at": "2026-01-05T12:02:00Z",
        "created_at": "2026-01-05T12:00:00Z",
        "updated_at": "2026-01-05T12:00:00Z",
        "finished_at": None,
        "reason_code": None,
        "gateway_message_id": None,
        "cancel_requested": False,
        "generation": 1,
        "payload_sha256": Intent.objects.get().payload_sha256,
        "metadata": {"order": "A-17"},
        "connection": None,
        "delivery_status": None,
        "delivered_at": None,
    }
    assert len(intent["payload_sha256"]) == 64
    assert api.get(f"/api/v1/intents/{intent['id']}").status_code == 200


def test_without_deadline_the_targets_acceptance_deadline_applies(submit, frozen_clock):
    intent = json.loads(submit().content)
    assert intent["deadline_at"] == "2026-01-05T12:10:00Z"  # sms.otp: 600 s
    assert intent["metadata"] == {}


def test_same_key_and_request_replays_the_existing_intent(api, targets, frozen_clock):
    first = api.post("/api/v1/intents", SMS_OTP_BODY, idempotency_key="k1")
    # Key order and spacing of the payload do not make it a different request.
    reordered = {
        "payload": {"text": "Your code is 123456", "to": "+15550100001"},
        "target": "sms.otp",
    }
    frozen_clock.advance(30)
    replay = api.post("/api/v1/intents", reordered, idempotency_key="k1")

    assert first.status_code == 201
    assert replay.status_code == 200, replay.content
    assert replay["Idempotent-Replayed"] == "true"
    assert "Location" not in replay
    assert json.loads(replay.content) == json.loads(first.content)
    assert Intent.objects.count() == 1


def test_replay_is_answered_even_after_the_intent_moved_on(api, submit, frozen_clock):
    created = json.loads(submit(key="k1").content)
    api.post(f"/api/v1/intents/{created['id']}/cancel")
    replay = submit(key="k1")
    assert replay.status_code == 200
    assert json.loads(replay.content)["status"] == "cancelled"


@pytest.mark.parametrize(
    "changed",
    [
        {"payload": {"to": "+15550100001", "text": "Your code is 654321"}},
        {"target": "sms.fast"},
        {"contract_version": "1.1"},
    ],
    ids=["payload", "target", "version"],
)
def test_same_key_with_a_different_request_is_409(submit, changed):
    assert submit(key="k1").status_code == 201
    response = submit({**SMS_OTP_BODY, **changed}, key="k1")
    body = assert_problem(response, 409, "idempotency_key_reused")
    assert "errors" not in body
    assert Intent.objects.count() == 1


def test_keys_are_per_tenant(submit, other_api, targets):
    mine = json.loads(submit(key="shared").content)
    theirs = other_api.post("/api/v1/intents", SMS_OTP_BODY, idempotency_key="shared")
    assert theirs.status_code == 201
    assert json.loads(theirs.content)["id"] != mine["id"]


@pytest.mark.parametrize(
    "key",
    [None, "", "k" * 256, "caf\u00e9", "tab\there", "bell\x07"],
    ids=["missing", "empty", "256-chars", "non-ascii", "tab", "control"],
)
def test_missing_or_bad_idempotency_key_is_400(api, targets, key):
    headers = {} if key is None else {"Idempotency-Key": key}
    response = api.post("/api/v1/intents", SMS_OTP_BODY, headers=headers)
    assert_problem(response, 400, "idempotency_key_invalid")
    assert Intent.objects.count() == 0


def test_idempotency_key_of_255_printable_characters_is_accepted(submit):
    key = ("~ !" * 85)[:255]
    response = submit(key=key)
    assert response.status_code == 201, response.content
    assert json.loads(response.content)["idempotency_key"] == key


@pytest.mark.parametrize(
    ("raw", "pointers"),
    [
        (b'{"target": "sms.otp", "payload": ', None),
        (b"[1, 2]", {""}),
        (b"", {"/target", "/payload"}),
    ],
    ids=["truncated-json", "array-body", "empty-body"],
)
def test_malformed_body_is_400_invalid_request(api, targets, raw, pointers):
    response = api.post("/api/v1/intents", raw=raw, idempotency_key="k1")
    body = assert_problem(response, 400, "invalid_request")
    if pointers is None:
        assert "errors" not in body
        assert body["detail"].startswith("Malformed JSON body")
    else:
        assert {e["pointer"] for e in body["errors"]} == pointers


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"target": 17}, "/target"),
        ({"target": None}, "/target"),
        ({"target": "SMS OTP!"}, "/target"),
        ({"target": "sms.otp\x00"}, "/target"),
        ({"contract_version": 1.2}, "/contract_version"),
        ({"contract_version": "v1"}, "/contract_version"),
        ({"deadline_seconds": "600"}, "/deadline_seconds"),
        ({"deadline_seconds": True}, "/deadline_seconds"),
        ({"deadline_seconds": 0}, "/deadline_seconds"),
        ({"deadline_seconds": -5}, "/deadline_seconds"),
        ({"metadata": ["a"]}, "/metadata"),
        ({"colour": "blue"}, "/colour"),
    ],
    ids=[
        "target-int",
        "target-null",
        "target-not-a-key",
        "target-nul",
        "version-number",
        "version-format",
        "deadline-string",
        "deadline-bool",
        "deadline-zero",
        "deadline-negative",
        "metadata-list",
        "unknown-field",
    ],
)
def test_wrong_fields_are_400_invalid_request_with_pointers(submit, change, pointer):
    response = submit({**SMS_OTP_BODY, **change})
    body = assert_problem(response, 400, "invalid_request")
    assert body["errors"], body
    assert all(set(error) == {"pointer", "message"} for error in body["errors"])
    assert pointer in {error["pointer"] for error in body["errors"]}
    assert Intent.objects.count() == 0


def test_missing_required_fields_are_each_reported(submit):
    body = assert_problem(submit({}), 400, "invalid_request")
    assert {e["pointer"] for e in body["errors"]} == {"/target", "/payload"}


def test_deadline_longer_than_the_targets_is_400(submit):
    response = submit({**SMS_OTP_BODY, "deadline_seconds": 601})
    body = assert_problem(response, 400, "invalid_request")
    assert "600" in body["detail"]
    assert submit({**SMS_OTP_BODY, "deadline_seconds": 600}).status_code == 201


def test_non_json_content_type_is_refused(api, targets):
    response = api.post(
        "/api/v1/intents", raw="target=sms.otp", content_type="text/plain", idempotency_key="k"
    )
    assert_problem(response, 415, "unsupported_media_type")


def test_unknown_target_is_422(submit):
    body = assert_problem(submit({**SMS_OTP_BODY, "target": "sms.otpp"}), 422, "target_unknown")
    assert "sms.otpp" in body["detail"]


@pytest.mark.parametrize("version", ["2.0", "0.9", "1.3", "1.10"])
def test_incompatible_contract_version_is_422(submit, version):
    response = submit({**SMS_OTP_BODY, "contract_version": version})
    assert_problem(response, 422, "contract_incompatible")


@pytest.mark.parametrize("version", ["1.0", "1.1", "1.2"])
def test_same_major_and_lower_or_equal_minor_is_compatible(submit, version):
    response = submit({**SMS_OTP_BODY, "contract_version": version})
    assert response.status_code == 201, response.content
    assert json.loads(response.content)["contract_version"] == "1.2"


def test_payload_failing_the_schema_is_422_with_pointer_and_message(submit):
    payload = {"to": "5550100001", "text": "x" * 1601}
    body = assert_problem(submit({**SMS_OTP_BODY, "payload": payload}), 422, "payload_invalid")
    assert sorted(e["pointer"] for e in body["errors"]) == ["/payload/text", "/payload/to"]
    for error in body["errors"]:
        assert set(error) == {"pointer", "message"}
        assert isinstance(error["message"], str) and error["message"]
    assert Intent.objects.count() == 0


def test_payload_of_the_wrong_json_type_is_422(submit):
    body = assert_problem(submit({**SMS_OTP_BODY, "payload": "hello"}), 422, "payload_invalid")
    assert body["errors"][0]["message"]


def test_target_not_allowed_for_the_tenant_is_403(submit, tenant):
    tenant.allow_all_targets = False
    tenant.allowed_targets = ["push.alert"]
    tenant.save(update_fields=["allow_all_targets", "allowed_targets"])
    body = assert_problem(submit(), 403, "target_not_allowed")
    assert "sms.otp" in body["detail"]


def test_key_without_the_write_scope_is_403(client_with_scopes, targets):
    reader = client_with_scopes(["intents:read", "targets:read"])
    response = reader.post("/api/v1/intents", SMS_OTP_BODY, idempotency_key="k1")
    body = assert_problem(response, 403, "scope_missing")
    assert "intents:write" in body["detail"]
    assert Intent.objects.count() == 0


def test_body_over_the_limit_is_413(api, targets, settings):
    settings.API_MAX_BODY_BYTES = 1024
    body = {**SMS_OTP_BODY, "metadata": {"note": "x" * 2000}}
    response = api.post("/api/v1/intents", body, idempotency_key="k1")
    body = assert_problem(response, 413, "payload_too_large")
    assert "1024" in body["detail"]
    assert Intent.objects.count() == 0


OK_PAYLOAD = b'{"to": "+15550100001", "text": "x"}'


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (
            b'{"target": "sms.otp", "payload": ' + b"[" * 30000 + b"]" * 30000 + b"}",
            "nested deeper",
        ),
        (
            b'{"target": "sms.otp", "payload": ' + b"[" * 64 + b"]" * 64 + b"}",
            "nested deeper",
        ),
        (
            b'{"target": "sms.otp", "payload": {"to": "+15550100001", "text": "\\ud800"}}',
            "surrogate",
        ),
        (
            b'{"target": "sms.otp", "payload": ' + OK_PAYLOAD + b', "metadata": {"\\udc00": 1}}',
            "surrogate",
        ),
        (
            b'{"target": "sms.otp", "payload": ' + OK_PAYLOAD + b', "deadline_seconds": NaN}',
            "NaN",
        ),
    ],
    ids=["very-deep", "65-levels", "lone-surrogate", "lone-surrogate-key", "nan"],
)
def test_json_that_could_not_be_stored_or_echoed_is_400(api, targets, raw, detail):
    api.client.raise_request_exception = False
    response = api.post("/api/v1/intents", raw=raw, idempotency_key="k1")
    body = assert_problem(response, 400, "invalid_request")
    assert detail in body["detail"]
    assert Intent.objects.count() == 0
    assert api.get("/api/v1/intents").status_code == 200


def test_payload_nested_64_levels_deep_is_accepted(api, targets):
    raw = b'{"target": "http.webhook", "payload": {"to": "a", "event": "e", "data": '
    raw += b'{"a": ' * 61 + b"1" + b"}" * 61 + b"}}"
    response = api.post("/api/v1/intents", raw=raw, idempotency_key="k1")
    assert response.status_code == 201, response.content


def test_paired_surrogates_are_ordinary_characters(submit):
    response = submit({**SMS_OTP_BODY, "metadata": {"emoji": "\U0001f600"}})
    assert response.status_code == 201
    assert json.loads(response.content)["metadata"] == {"emoji": "\U0001f600"}


def test_nul_character_in_metadata_is_400_but_allowed_in_the_payload(api, submit):
    refused = submit({**SMS_OTP_BODY, "metadata": {"note": ["a\x00b"]}})
    body = assert_problem(refused, 400, "invalid_request")
    assert [e["pointer"] for e in body["errors"]] == ["/metadata"]
    assert_problem(submit({**SMS_OTP_BODY, "metadata": {"k\x00": 1}}), 400, "invalid_request")
    # A literal backslash-u is just text.
    assert submit({**SMS_OTP_BODY, "metadata": {"note": "\\u0000"}}).status_code == 201
    accepted = submit({**SMS_OTP_BODY, "payload": {"to": "+15550100001", "text": "a\x00b"}})
    assert accepted.status_code == 201, accepted.content
    assert api.get("/api/v1/intents").status_code == 200


def test_unknown_and_invalid_fields_are_reported_together(submit):
    response = submit({"target": 17, "payload": {}, "colour": "blue", "size": 1})
    body = assert_problem(response, 400, "invalid_request")
    assert [e["pointer"] for e in body["errors"]] == ["/target", "/colour", "/size"]
