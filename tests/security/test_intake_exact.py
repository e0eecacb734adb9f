"""Findings 8 and 11: a request is matched exactly. ``contract_version`` and ``target``
are whole-value patterns (no trailing newline), and a reused idempotency key must repeat
the whole request, metadata and deadline_seconds included."""

from __future__ import annotations

import pytest

from intents.models import Intent
from tests.api.conftest import SMS_OTP_BODY, assert_problem

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("field, value", [("contract_version", "1.0\n"), ("target", "sms.otp\n")])
def test_a_trailing_newline_is_a_malformed_field(submit, field, value):
    response = submit({**SMS_OTP_BODY, field: value})

    body = assert_problem(response, 400, "invalid_request")
    assert body["errors"][0]["pointer"] == f"/{field}"
    assert not Intent.objects.exists()


def test_a_retry_with_the_same_whole_request_is_replayed(submit):
    body = {**SMS_OTP_BODY, "metadata": {"order": "A-17"}, "deadline_seconds": 300}
    first = submit(body, key="k-1")
    again = submit({**body, "metadata": {"order": "A-17"}, "deadline_seconds": 300.0}, key="k-1")

    assert first.status_code == 201
    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"


@pytest.mark.parametrize(
    "change",
    [
        {"metadata": {"order": "B-99"}},
        {"metadata": {}},
        {"deadline_seconds": 120},
        {"deadline_seconds": None},
    ],
    ids=["other-metadata", "no-metadata", "other-deadline", "no-deadline"],
)
def test_a_retry_with_other_metadata_or_deadline_is_a_conflict(submit, change):
    body = {**SMS_OTP_BODY, "metadata": {"order": "A-17"}, "deadline_seconds": 300}
    assert submit(body, key="k-1").status_code == 201

    retry = {**body, **change}
    retry = {name: value for name, value in retry.items() if value is not None}
    assert_problem(submit(retry, key="k-1"), 409, "idempotency_key_reused")
    assert Intent.objects.get().metadata == {"order": "A-17"}
