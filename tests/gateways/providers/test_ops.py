"""PagerDuty Events API v2 and Slack incoming webhooks against their documented answers."""

from __future__ import annotations

import json

import httpx
import pytest

from gateways.base import Outcome
from gateways.providers import provider_class
from gateways.providers.pagerduty import PagerDutyProvider
from gateways.providers.slack import SlackProvider

from ..conftest import Recorder
from .conftest import DictSecrets, connection, run

ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"  # 32 characters, as documented
SLACK_URL = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"


@pytest.fixture(autouse=True)
def _allowed(allow_hosts) -> None:
    allow_hosts("events.pagerduty.com", "hooks.slack.com")


def pagerduty(client, routing_key: str = ROUTING_KEY) -> PagerDutyProvider:
    return PagerDutyProvider(
        config=connection("pagerduty", "ops", secrets={"routing_key": "env:PD_KEY"}),
        client=client,
        secrets=DictSecrets({"env:PD_KEY": routing_key}),
    )


def slack(client, url: str = SLACK_URL) -> SlackProvider:
    return SlackProvider(
        config=connection("slack", "ops", secrets={"webhook_url": "env:SLACK_URL"}),
        client=client,
        secrets=DictSecrets({"env:SLACK_URL": url}),
    )


def test_registered() -> None:
    assert provider_class("pagerduty") is PagerDutyProvider
    assert provider_class("slack") is SlackProvider


# --- PagerDuty -------------------------------------------------------------------------

ACCEPTED = {"status": "success", "message": "Event processed", "dedup_key": "samplekeyhere"}


def test_pagerduty_trigger_is_the_documented_event(make_message) -> None:
    recorder = Recorder(httpx.Response(202, json=ACCEPTED))
    message = make_message(
        {
            "summary": "Dead letters burst on sms.otp",
            "severity": "critical",
            "source": "portal-eu-1",
            "component": "sms.otp",
            "details": {"opened": 42, "window_min": 5},
            "dedup_key": "samplekeyhere",
        }
    )

    result = run(lambda c: pagerduty(c).send(message, timeout_s=2), recorder.client())

    assert result.outcome is Outcome.ACCEPTED
    assert result.message_id == "samplekeyhere"
    (request,) = recorder.requests
    assert request.method == "POST"
    assert str(request.url) == "https://events.pagerduty.com/v2/enqueue"
    assert json.loads(request.content) == {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "samplekeyhere",
        "payload": {
            "summary": "Dead letters burst on sms.otp",
            "source": "portal-eu-1",
            "severity": "critical",
            "component": "sms.otp",
            "custom_details": {"opened": 42, "window_min": 5},
        },
    }


def test_pagerduty_resolve_needs_only_the_dedup_key(make_message) -> None:
    recorder = Recorder(httpx.Response(202, json=ACCEPTED))
    message = make_message({"event_action": "resolve"}, key="episode-7")
    run(lambda c: pagerduty(c).send(message, timeout_s=2), recorder.client())
    assert json.loads(recorder.requests[0].content) == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": "episode-7",
    }


@pytest.mark.parametrize(
    ("status", "body", "outcome", "auth_failed"),
    [
        (
            400,
            {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": ["'payload.severity' is missing or blank"],
            },
            Outcome.REJECTED_PERMANENT,
            False,
        ),
        (
            400,
            {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": ["Length of 'routing_key' is incorrect (should be 32 characters)"],
            },
            Outcome.REJECTED_TRANSIENT,
            True,
        ),
        (
            429,
            {
                "status": "throttle event",
                "message": "Requests for this service are arriving too quickly.",
            },
            Outcome.REJECTED_TRANSIENT,
            False,
        ),
        (500, {}, Outcome.REJECTED_TRANSIENT, False),
    ],
)
def test_pagerduty_documented_errors(make_message, status, body, outcome, auth_failed) -> None:
    recorder = Recorder(httpx.Response(status, json=body))
    result = run(
        lambda c: pagerduty(c).send(make_message({"summary": "x"}), timeout_s=2),
        recorder.client(),
    )
    assert (result.outcome, result.auth_failed) == (outcome, auth_failed)
    assert ROUTING_KEY not in result.error


def test_pagerduty_bad_severity_is_our_error(make_message) -> None:
    recorder = Recorder(httpx.Response(202, json=ACCEPTED))
    message = make_message({"summary": "x", "severity": "sev1"})
    result = run(lambda c: pagerduty(c).send(message, timeout_s=2), recorder.client())
    assert result.outcome is Outcome.EXECUTOR_ERROR
    assert recorder.requests == []


def test_pagerduty_probe_checks_the_key_shape() -> None:
    good = run(lambda c: pagerduty(c).probe(timeout_s=2), Recorder(httpx.Response(500)).client())
    bad = run(
        lambda c: pagerduty(c, "short").probe(timeout_s=2), Recorder(httpx.Response(500)).client()
    )
    assert good.ok
    assert not bad.ok
    assert "short" not in bad.detail


# --- Slack -----------------------------------------------------------------------------


def test_slack_posts_text_to_the_secret_url(make_message) -> None:
    recorder = Recorder(httpx.Response(200, text="ok"))
    message = make_message({"summary": "Backlog stale for 600 s", "severity": "warning"})

    result = run(lambda c: slack(c).send(message, timeout_s=2), recorder.client())

    assert result.outcome is Outcome.ACCEPTED
    (request,) = recorder.requests
    assert request.method == "POST"
    assert str(request.url) == SLACK_URL
    assert json.loads(request.content) == {"text": "[WARNING] Backlog stale for 600 s"}


def test_slack_passes_text_and_blocks_through(make_message) -> None:
    recorder = Recorder(httpx.Response(200, text="ok"))
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    message = make_message({"text": "hi", "blocks": blocks})
    run(lambda c: slack(c).send(message, timeout_s=2), recorder.client())
    assert json.loads(recorder.requests[0].content) == {"text": "hi", "blocks": blocks}


@pytest.mark.parametrize(
    ("status", "word", "outcome", "auth_failed"),
    [
        (400, "invalid_payload", Outcome.REJECTED_PERMANENT, False),
        (400, "no_text", Outcome.REJECTED_PERMANENT, False),
        (404, "channel_not_found", Outcome.REJECTED_PERMANENT, False),
        (410, "channel_is_archived", Outcome.REJECTED_PERMANENT, False),
        (403, "action_prohibited", Outcome.REJECTED_PERMANENT, False),
        (403, "invalid_token", Outcome.REJECTED_TRANSIENT, True),
        (404, "no_service", Outcome.REJECTED_TRANSIENT, True),
        (500, "rollup_error", Outcome.REJECTED_TRANSIENT, False),
        (429, "rate_limited", Outcome.REJECTED_TRANSIENT, False),
    ],
)
def test_slack_documented_errors(make_message, status, word, outcome, auth_failed) -> None:
    recorder = Recorder(httpx.Response(status, text=word))
    result = run(
        lambda c: slack(c).send(make_message({"summary": "x"}), timeout_s=2), recorder.client()
    )
    assert (result.outcome, result.auth_failed) == (outcome, auth_failed)
    assert result.provider_code == word


def test_slack_url_never_appears_in_an_error(make_message) -> None:
    recorder = Recorder(httpx.Response(500, text=f"upstream {SLACK_URL} failed"))
    result = run(
        lambda c: slack(c).send(make_message({"summary": "x"}), timeout_s=2), recorder.client()
    )
    assert "XXXXXXXX" not in result.error
    assert result.outcome is Outcome.REJECTED_TRANSIENT


def test_slack_url_outside_the_allow_list(make_message) -> None:
    recorder = Recorder(httpx.Response(200, text="ok"))
    result = run(
        lambda c: slack(c, "https://evil.example/x").send(
            make_message({"summary": "x"}), timeout_s=2
        ),
        recorder.client(),
    )
    assert result.outcome is Outcome.EXECUTOR_ERROR
    assert recorder.requests == []


def test_slack_probe_posts_nothing() -> None:
    recorder = Recorder(httpx.Response(200, text="ok"))
    probe = run(lambda c: slack(c).probe(timeout_s=2), recorder.client())
    assert probe.ok
    assert recorder.requests == []
