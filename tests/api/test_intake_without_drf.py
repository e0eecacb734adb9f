"""POST /api/v1/intents answered without DRF's dispatch (intents.api_intake), exactly as
DRF answers it, and every request it cannot answer so left to DRF."""

from __future__ import annotations

import json
import re
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.views import APIView

from intents.api_intake import plain_submission
from intents.serializers import IntentCreateInputSerializer
from portal.accounts.models import ApiKeyScope
from portal.api.views import StrictJSONParser

from .conftest import SMS_OTP_BODY, ApiClient, make_key

pytestmark = pytest.mark.django_db

INTENTS = "/api/v1/intents"


def serializer_verdict(body: bytes) -> dict[str, Any] | None:
    """What DRF's parser and IntentCreateInputSerializer make of ``body`` (None: refused)."""
    import io

    from rest_framework.exceptions import ParseError

    try:
        data = StrictJSONParser().parse(io.BytesIO(body))
    except ParseError:
        return None
    serializer = IntentCreateInputSerializer(data=data)
    return dict(serializer.validated_data) if serializer.is_valid() else None


BODIES: list[Any] = [
    SMS_OTP_BODY,
    {**SMS_OTP_BODY, "contract_version": "1.0", "deadline_seconds": 600, "metadata": {"a": 1}},
    {**SMS_OTP_BODY, "contract_version": None, "deadline_seconds": None},
    {**SMS_OTP_BODY, "deadline_seconds": 1},
    {**SMS_OTP_BODY, "deadline_seconds": 0.5},
    {**SMS_OTP_BODY, "deadline_seconds": 366 * 24 * 3600},
    {**SMS_OTP_BODY, "deadline_seconds": 366 * 24 * 3600 + 1},
    {**SMS_OTP_BODY, "deadline_seconds": True},
    {**SMS_OTP_BODY, "deadline_seconds": "600"},
    {**SMS_OTP_BODY, "contract_version": "1.0\n"},
    {**SMS_OTP_BODY, "contract_version": "01.0"},
    {**SMS_OTP_BODY, "contract_version": ""},
    {**SMS_OTP_BODY, "contract_version": 1.0},
    {**SMS_OTP_BODY, "target": ""},
    {**SMS_OTP_BODY, "target": "a" * 100},
    {**SMS_OTP_BODY, "target": "a" * 101},
    {**SMS_OTP_BODY, "target": "Sms.otp"},
    {**SMS_OTP_BODY, "target": "sms.otp\n"},
    {**SMS_OTP_BODY, "target": None},
    {**SMS_OTP_BODY, "target": 17},
    {**SMS_OTP_BODY, "metadata": {}},
    {**SMS_OTP_BODY, "metadata": None},
    {**SMS_OTP_BODY, "metadata": [1]},
    {**SMS_OTP_BODY, "metadata": {"k": "\u0000"}},
    {**SMS_OTP_BODY, "metadata": {"\u0000": 1}},
    {**SMS_OTP_BODY, "payload": None},
    {**SMS_OTP_BODY, "payload": "\u0000 is fine in a payload"},
    {**SMS_OTP_BODY, "extra": 1},
    {"payload": {}},
    {"target": "sms.otp"},
    [],
    "sms.otp",
    None,
]
RAW_BODIES = [
    b"",
    b"{",
    b'{"target":"sms.otp","payload":NaN}',
    b'{"target":"sms.otp","payload":1e999}',
    b'{"target":"sms.otp","payload":"\\ud800"}',
    b'{"target":"sms.otp","payload":' + b"[" * 70 + b"]" * 70 + b"}",
    b'\xef\xbb\xbf{"target":"sms.otp","payload":{}}',
    b'{"target":"sms.otp","payload":"\xff"}',
    b'{"target":"sms.otp","payload":{},"payload":1}',
]


@pytest.mark.parametrize(
    "body", [json.dumps(b).encode() for b in BODIES] + RAW_BODIES, ids=lambda b: b[:60]
)
def test_takes_exactly_the_bodies_the_serializer_accepts_as_it_validates_them(body):
    assert plain_submission(body) == serializer_verdict(body)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=8,
)
FIELD_VALUES = {
    "target": st.sampled_from(["sms.otp", "", "x" * 101, "A", "a.b-c_d"]) | JSON_VALUES,
    "contract_version": st.sampled_from(["1.0", "1.", "99.99", "1.0 "]) | JSON_VALUES,
    "payload": JSON_VALUES,
    "deadline_seconds": st.sampled_from([1, 0.99, 31_622_400, 31_622_401]) | JSON_VALUES,
    "metadata": JSON_VALUES,
    "other": JSON_VALUES,
}


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional=FIELD_VALUES))
def test_agrees_with_the_serializer_on_any_body(data):
    body = json.dumps(data).encode()
    assert plain_submission(body) == serializer_verdict(body)


def normalised(response) -> tuple[int, dict[str, str], str]:
    text = response.content.decode()
    headers = {name: value for name, value in response.items() if name != "X-Request-ID"}
    uuid = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    rid = response["X-Request-ID"]
    text = re.sub(uuid, "<id>", text.replace(rid, "<request-id>"))
    headers = {name: re.sub(uuid, "<id>", value) for name, value in headers.items()}
    return response.status_code, headers, text


@pytest.fixture
def dispatched():
    """How many requests went through DRF's dispatch."""
    calls = []
    real = APIView.dispatch

    def counted(self, request, *args, **kwargs):
        calls.append(type(self).__name__)
        return real(self, request, *args, **kwargs)

    with mock.patch.object(APIView, "dispatch", counted):
        yield calls


def both_ways(api: ApiClient, body: Any) -> tuple[Any, Any]:
    """The same request without DRF, then (a fresh key of the same length, so it runs
    alike) through DRF: a query string sends it there."""
    plain = api.post(INTENTS, body, idempotency_key="plain")
    drf = api.post(f"{INTENTS}?via=drf", body, idempotency_key="drf-1")
    return plain, drf


@pytest.mark.parametrize(
    "body",
    [
        SMS_OTP_BODY,
        {**SMS_OTP_BODY, "metadata": {"line": "\u2028 and ☃"}, "deadline_seconds": 60},
        {**SMS_OTP_BODY, "target": "no.such"},
        {**SMS_OTP_BODY, "contract_version": "9.0"},
        {"target": "sms.otp", "payload": {"to": 5}},
        {**SMS_OTP_BODY, "deadline_seconds": 10**6},
    ],
    ids=["created", "unicode", "unknown", "incompatible", "payload", "deadline"],
)
def test_answers_as_drf_does(api, targets, frozen_clock, dispatched, body):
    plain, drf = both_ways(api, body)
    assert dispatched == ["IntentCreateApi"]  # the second one only
    status, headers, text = normalised(plain)
    assert (status, headers, text.replace('"plain"', '"drf-1"')) == normalised(drf)


def test_answers_replays_conflicts_and_refusals_of_the_service_as_drf_does(
    api, targets, tenant, frozen_clock, dispatched
):
    api.post(INTENTS, SMS_OTP_BODY, idempotency_key="once")
    replays = (
        api.post(INTENTS, SMS_OTP_BODY, idempotency_key="once"),
        api.post(f"{INTENTS}?via=drf", SMS_OTP_BODY, idempotency_key="once"),
    )
    assert replays[0].status_code == 200 and replays[0]["Idempotent-Replayed"] == "true"
    conflicts = [
        api.post(path, {**SMS_OTP_BODY, "metadata": {"x": 1}}, idempotency_key="once")
        for path in (INTENTS, f"{INTENTS}?via=drf")
    ]
    assert conflicts[0].status_code == 409
    tenant.max_open_intents = 1
    tenant.save()
    quota = [
        api.post(path, SMS_OTP_BODY, idempotency_key=f"more-{n}")
        for n, path in enumerate((INTENTS, f"{INTENTS}?via=drf"))
    ]
    assert quota[0].status_code == 429 and quota[0]["Retry-After"]
    tenant.max_open_intents, tenant.rate_limit_per_minute = 100, 1
    tenant.save()
    rate = [
        api.post(path, SMS_OTP_BODY, idempotency_key=f"rate-{n}")
        for n, path in enumerate((INTENTS, f"{INTENTS}?via=drf"))
    ]
    assert rate[0].status_code == 429
    assert dispatched == ["IntentCreateApi"] * 4
    for plain, drf in (replays, conflicts, quota, rate):
        assert normalised(plain) == normalised(drf)


def test_an_unexpected_error_is_answered_and_reported_as_drf_does(
    api, targets, frozen_clock, caplog
):
    api.client.raise_request_exception = False  # a 500 is answered, not raised
    with mock.patch("intents.api_intake.intent_submit", side_effect=RuntimeError("boom")):
        plain = api.post(INTENTS, SMS_OTP_BODY, idempotency_key="k")
    with mock.patch("intents.api.intent_submit", side_effect=RuntimeError("boom")):
        drf = api.post(f"{INTENTS}?via=drf", SMS_OTP_BODY, idempotency_key="k")
    assert plain.status_code == 500 and normalised(plain) == normalised(drf)
    assert [r.getMessage() for r in caplog.records if r.name == "portal.api"] == [
        "unhandled API error",
        "unhandled API error",
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"headers": {"Accept": "text/html"}},
        {"headers": {"Accept": "application/json; indent=4"}},
        {"content_type": "application/json; charset=utf-8"},
        {"content_type": "text/plain"},
        {"headers": {"Authorization": "Bearer nope.nope"}},
        {"headers": {"Authorization": "Basic abc"}},
        {"raw": b'{"target": "sms.otp", "payload": {}, "extra": 1}'},
        {"raw": b"{"},
        {"raw": b'{"target":"sms.otp","payload":"' + b"x" * 70_000 + b'"}'},
        {"idempotency_key": None},
    ],
    ids=lambda kwargs: str(kwargs)[:50],
)
def test_leaves_to_drf_what_drf_must_word(api, targets, dispatched, kwargs):
    kwargs = {"idempotency_key": "k", **kwargs}
    api.post(INTENTS, SMS_OTP_BODY, **kwargs)
    assert dispatched == ["IntentCreateApi"]


def test_leaves_a_key_without_the_write_scope_to_drf(tenant, targets, dispatched):
    reader = ApiClient(make_key(tenant, [ApiKeyScope.INTENTS_READ]))
    response = reader.post(INTENTS, SMS_OTP_BODY, idempotency_key="k")
    assert response.status_code == 403 and dispatched == ["IntentCreateApi"]
