"""Structured logs: one correlation id from the HTTP request through every lifecycle step
to the gateway call, and no secret or sensitive payload field in any line."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
import respx

from intents.dispatch import run_once
from intents.models import Intent
from portal.observability.logging import REDACTED, bind_correlation, get_logger
from tests.api.conftest import ApiClient, make_key

GATEWAY_URL = "http://127.0.0.1:8025/sms"
SECRET_TEXT = "Your code is 493817"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def api(tenant, targets, settings):
    settings.GATEWAY_ADAPTERS = {"sms": "gateways.adapters.sms.SmsGateway"}
    settings.GATEWAY_SMS_URL = GATEWAY_URL
    return ApiClient(make_key(tenant))


@pytest.fixture
def gateway():
    """The real SMS adapter, its HTTP answered by respx; ``gateway.answers`` in order."""
    with respx.mock(assert_all_called=False) as router:
        route = router.post(GATEWAY_URL)
        yield route


def submit(api, headers, to="+15550100001"):
    response = api.post(
        "/api/v1/intents",
        {"target": "sms.fast", "payload": {"to": to, "text": SECRET_TEXT}},
        idempotency_key=f"idem-{to}",
        headers=headers,
    )
    assert response.status_code == 201, response.content
    return response, Intent.objects.get(public_id=response.json()["id"])


def lifecycle_lines(capture, intent):
    return [line for line in capture.lines() if line.get("intent_id") == str(intent.public_id)]


def assert_no_secret(capture, *secrets):
    for secret in secrets:
        assert secret not in capture.text, secret


def test_one_request_id_from_submission_to_the_gateway(
    api, gateway, frozen_clock, log_capture, django_capture_on_commit_callbacks
):
    gateway.side_effect = [
        httpx.Response(503, json={"error": "busy"}),
        httpx.Response(202, json={"message_id": "gw-777"}),
    ]
    response, intent = submit(api, {"X-Request-ID": "req-abc-123"})
    assert response["X-Request-ID"] == "req-abc-123"
    with django_capture_on_commit_callbacks(execute=True):
        run_once()
    frozen_clock.advance(2)
    with django_capture_on_commit_callbacks(execute=True):
        run_once()

    intent.refresh_from_db()
    assert intent.status == "accepted"
    assert intent.correlation_id == "req-abc-123"
    steps = [line["event"] for line in lifecycle_lines(log_capture, intent)]
    assert steps == [
        "intent.submitted",
        "intent.claimed",
        "attempt.started",
        "attempt.finished",
        "intent.retry_scheduled",
        "intent.claimed",
        "attempt.started",
        "attempt.finished",
        "intent.finished",
    ]
    for line in lifecycle_lines(log_capture, intent):
        assert line["correlation_id"] == "req-abc-123", line
        assert line["level"] in ("info", "warning")
        assert line["timestamp"].endswith("Z")
    http = [
        line
        for line in log_capture.events("http.request")
        if line["path"] == "/api/v1/intents" and line["method"] == "POST"
    ]
    assert len(http) == 1
    assert http[0]["correlation_id"] == "req-abc-123"
    assert http[0]["status"] == 201

    finished = log_capture.events("attempt.finished")
    assert [(f["attempt"], f["outcome"], f["gateway_status"]) for f in finished] == [
        (1, "rejected_transient", 503),
        (2, "accepted", 202),
    ]
    (terminal,) = log_capture.events("intent.finished")
    assert terminal["status"] == "accepted"
    assert terminal["reason_code"] == "gateway_accepted"
    assert terminal["gateway_message_id"] == "gw-777"

    # Every gateway call carried the same id, and the intent id as the idempotency key.
    assert gateway.call_count == 2
    for call in gateway.calls:
        assert call.request.headers["X-Request-ID"] == "req-abc-123"
        assert call.request.headers["Idempotency-Key"] == str(intent.public_id)
        assert json.loads(call.request.content)["text"] == SECRET_TEXT  # sent, not logged
    assert_no_secret(log_capture, SECRET_TEXT, api.key)


def test_w3c_traceparent_becomes_the_correlation_id(
    api, gateway, frozen_clock, log_capture, django_capture_on_commit_callbacks
):
    gateway.return_value = httpx.Response(400, json={"error": "recipient rejected"})
    response, intent = submit(api, {"traceparent": TRACEPARENT}, to="+15550100400")
    assert response["X-Request-ID"] == TRACE_ID
    assert response.json()["id"] == str(intent.public_id)
    with django_capture_on_commit_callbacks(execute=True):
        run_once()

    intent.refresh_from_db()
    assert intent.status == "failed"
    lines = lifecycle_lines(log_capture, intent)
    assert [line["event"] for line in lines] == [
        "intent.submitted",
        "intent.claimed",
        "attempt.started",
        "attempt.finished",
        "intent.finished",
    ]
    assert {line["correlation_id"] for line in lines} == {TRACE_ID}
    assert lines[-1]["status"] == "failed"
    assert lines[-1]["reason_code"] == "gateway_rejected"
    assert gateway.calls.last.request.headers["X-Request-ID"] == TRACE_ID
    assert_no_secret(log_capture, SECRET_TEXT, api.key)


def test_a_sane_request_id_wins_over_traceparent_and_a_bad_one_is_replaced(api, log_capture):
    both = api.get("/api/v1/targets", headers={"X-Request-ID": "mine", "traceparent": TRACEPARENT})
    assert both["X-Request-ID"] == "mine"
    bad = api.get("/api/v1/targets", headers={"X-Request-ID": "bad id\twith junk"})
    assert bad["X-Request-ID"] != "bad id\twith junk"
    assert len(bad["X-Request-ID"]) == 32
    ids = [line["correlation_id"] for line in log_capture.events("http.request")]
    assert ids == ["mine", bad["X-Request-ID"]]


def test_without_a_request_the_intent_id_correlates(
    submit_service, gateway, log_capture, django_capture_on_commit_callbacks
):
    gateway.return_value = httpx.Response(202, json={"message_id": "gw-1"})
    intent = submit_service()
    with django_capture_on_commit_callbacks(execute=True):
        run_once()
    lines = lifecycle_lines(log_capture, intent)
    assert lines[0]["event"] == "intent.submitted"
    assert lines[-1]["event"] == "intent.finished"
    assert {line["correlation_id"] for line in lines} == {str(intent.public_id)}
    assert gateway.calls.last.request.headers["X-Request-ID"] == str(intent.public_id)


@pytest.fixture
def submit_service(tenant, targets, settings):
    from intents.services import intent_submit

    settings.GATEWAY_ADAPTERS = {"sms": "gateways.adapters.sms.SmsGateway"}
    settings.GATEWAY_SMS_URL = GATEWAY_URL

    def _submit():
        return intent_submit(
            tenant=tenant,
            idempotency_key="service-1",
            target_key="sms.fast",
            contract_version=None,
            payload={"to": "+15550100001", "text": SECRET_TEXT},
        ).intent

    return _submit


def test_a_timeout_and_a_lease_loss_are_logged_with_the_correlation_id(
    api, gateway, frozen_clock, log_capture, django_capture_on_commit_callbacks
):
    from intents.execution import sweep_expired_leases

    gateway.side_effect = httpx.ReadTimeout("slow")
    _, intent = submit(api, {"X-Request-ID": "req-timeout"}, to="+15550100504")
    with django_capture_on_commit_callbacks(execute=True):
        run_once()
    (finished,) = log_capture.events("attempt.finished")
    assert finished["outcome"] == "timeout"
    assert finished["correlation_id"] == "req-timeout"
    # A worker that vanished: the sweeper reclaims its lease and says so.
    frozen_clock.advance(2)
    Intent.objects.filter(pk=intent.pk).update(
        status="in_flight", lease_owner="gone", lease_expires_at=frozen_clock.now
    )
    frozen_clock.advance(1)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert sweep_expired_leases() == 1
        assert log_capture.text.count('"lease_lost"') == 0  # not before the commit
    assert callbacks  # the state line waits for the commit
    recorded = lifecycle_lines(log_capture, intent)[-1]
    assert recorded["event"] == "intent.retry_scheduled"
    assert recorded["last_outcome"] == "lease_lost"
    assert recorded["correlation_id"] == "req-timeout"


# --- redaction --------------------------------------------------------------------------


def test_secret_keys_are_blanked_at_any_depth(log_capture):
    logger = get_logger("tests.redaction")
    logger.info(
        "gateway.configured",
        password="hunter2-password",
        api_key="pk_live_abcdef123456",
        headers={"Authorization": "Bearer tok-very-secret", "Accept": "application/json"},
        nested={"deeper": [{"client_secret": "cs-0987"}, {"X-Api-Key": "xk-5555"}]},
        session_cookie="sess-cookie-1",
        otp_code="123456",
        note="retrying with header Authorization: Bearer leaked-bearer-value",
        lease_token="lease-visible",
    )
    (line,) = log_capture.events("gateway.configured")
    assert line["password"] == REDACTED
    assert line["api_key"] == REDACTED
    assert line["headers"] == {"Authorization": REDACTED, "Accept": "application/json"}
    assert line["nested"] == {"deeper": [{"client_secret": REDACTED}, {"X-Api-Key": REDACTED}]}
    assert line["session_cookie"] == REDACTED
    assert line["otp_code"] == REDACTED
    assert line["lease_token"] == "lease-visible"  # an operator needs it; not a secret
    assert line["note"] == f"retrying with header Authorization: Bearer {REDACTED}"
    assert_no_secret(
        log_capture,
        "hunter2-password",
        "pk_live_abcdef123456",
        "tok-very-secret",
        "cs-0987",
        "xk-5555",
        "sess-cookie-1",
        "leaked-bearer-value",
    )


def test_stdlib_records_and_tracebacks_are_redacted_too(log_capture):
    stdlib = logging.getLogger("tests.redaction.stdlib")
    stdlib.warning("plain stdlib line", extra={"password": "stdlib-pass-1"})
    try:
        raise RuntimeError("gateway said: Bearer tb-secret-token-9")
    except RuntimeError:
        stdlib.exception("call failed")
    text = log_capture.text
    assert "stdlib-pass-1" not in text
    assert "tb-secret-token-9" not in text
    (line,) = [entry for entry in log_capture.lines() if entry["event"] == "call failed"]
    assert "RuntimeError" in line["exception"]


def test_contract_sensitive_fields_and_configured_fields_are_blanked(log_capture, settings):
    settings.LOG_REDACT_FIELDS = ["msisdn"]
    logger = get_logger("tests.redaction")
    with bind_correlation("corr-1", sensitive_fields=["Text", "pin"]):
        logger.info(
            "payload.seen",
            payload={"to": "+15550100001", "text": SECRET_TEXT, "meta": {"pin": "8642"}},
            msisdn="+15550199999",
        )
    logger.info("after.block", text="visible again")
    (line,) = log_capture.events("payload.seen")
    assert line["correlation_id"] == "corr-1"
    assert line["payload"] == {"to": "+15550100001", "text": REDACTED, "meta": {"pin": REDACTED}}
    assert line["msisdn"] == REDACTED
    assert log_capture.events("after.block")[0]["text"] == "visible again"
    assert_no_secret(log_capture, SECRET_TEXT, "8642", "+15550199999")


def test_api_keys_never_reach_the_log(api, log_capture):
    assert api.get("/api/v1/targets").status_code == 200
    wrong = "sp_live_" + "x" * 40
    bad = ApiClient(wrong).get("/api/v1/targets")
    assert bad.status_code == 401
    assert log_capture.events("http.request")  # the requests were logged...
    assert_no_secret(log_capture, api.key, wrong)  # ...without their keys


def test_admin_passwords_never_reach_the_log(client, db, log_capture):
    from tests.accounts.factories import create_staff_user

    create_staff_user("olga")
    client.post(
        "/admin/login/", {"username": "olga", "password": "Wrong-Password-Value-77"}, follow=True
    )
    assert log_capture.lines()  # something was logged about the request
    assert_no_secret(log_capture, "Wrong-Password-Value-77")


def test_a_cancel_is_logged_on_the_intents_trail(api, log_capture):
    _, intent = submit(api, {"X-Request-ID": "req-to-cancel"})
    response = api.post(
        f"/api/v1/intents/{intent.public_id}/cancel", headers={"X-Request-ID": "req-cancel"}
    )
    assert response.status_code == 200, response.content
    lines = lifecycle_lines(log_capture, intent)
    assert [line["event"] for line in lines] == ["intent.submitted", "intent.finished"]
    assert lines[-1]["status"] == "cancelled"
    assert lines[-1]["reason_code"] == "cancelled_by_client"
    assert {line["correlation_id"] for line in lines} == {"req-to-cancel"}
    (cancel_request,) = [
        line for line in log_capture.events("http.request") if line["path"].endswith("/cancel")
    ]
    assert cancel_request["correlation_id"] == "req-cancel"


def test_a_cancel_while_in_flight_is_noted(api, log_capture):
    _, intent = submit(api, {"X-Request-ID": "req-in-flight"})
    Intent.objects.filter(pk=intent.pk).update(status="in_flight", lease_owner="w")
    assert api.post(f"/api/v1/intents/{intent.public_id}/cancel").status_code == 200
    last = lifecycle_lines(log_capture, intent)[-1]
    assert (last["event"], last["status"]) == ("intent.cancel_requested", "in_flight")
    assert last["correlation_id"] == "req-in-flight"


def test_lifecycle_lines_cost_nothing_when_the_level_is_above_info(
    api, gateway, log_capture, django_capture_on_commit_callbacks
):
    gateway.return_value = httpx.Response(202, json={"message_id": "gw-2"})
    lifecycle_logger = logging.getLogger("portal.lifecycle")
    lifecycle_logger.setLevel(logging.WARNING)
    try:
        _, intent = submit(api, {"X-Request-ID": "req-quiet"})
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            run_once()
    finally:
        lifecycle_logger.setLevel(logging.NOTSET)
    assert Intent.objects.get(pk=intent.pk).status == "accepted"
    assert lifecycle_lines(log_capture, intent) == []
    assert not any("function recorded" in repr(callback) for callback in callbacks)
    assert gateway.calls.last.request.headers["X-Request-ID"] == "req-quiet"
