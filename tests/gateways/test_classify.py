from __future__ import annotations

import datetime as dt

import httpx
import pytest

from gateways.adapters.base_http import result_from_response
from gateways.base import Outcome
from gateways.classify import classify_status, parse_retry_after

NOW = dt.datetime(2026, 1, 5, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        *((s, Outcome.ACCEPTED) for s in (200, 201, 202, 204, 299)),
        *((s, Outcome.REJECTED_TRANSIENT) for s in (408, 425, 429, 500, 502, 503, 504, 599)),
        *((s, Outcome.REJECTED_PERMANENT) for s in (400, 401, 403, 404, 409, 410, 422, 499)),
        *((s, Outcome.EXECUTOR_ERROR) for s in (301, 302, 307, 308)),
        *((s, Outcome.REJECTED_TRANSIENT) for s in (100, 199, 600, 999)),
    ],
)
def test_status_classification(status: int, outcome: Outcome) -> None:
    assert classify_status(status) is outcome


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("-5", 0.0),
        ("Mon, 05 Jan 2026 12:00:30 GMT", 30.0),
        ("Mon, 05 Jan 2026 11:00:00 GMT", 0.0),  # in the past: retry now
        ("Monday, 05-Jan-26 12:01:00 GMT", 60.0),  # obsolete RFC 850 form
        (None, None),
        ("", None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
        ("Mon, 99 Foo 2026 12:00:30 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def test_retry_after_is_read_only_on_429_and_503() -> None:
    headers = httpx.Headers({"Retry-After": "9"})
    assert result_from_response(429, headers, b"").retry_after_s == 9.0
    assert result_from_response(503, headers, b"").retry_after_s == 9.0
    assert result_from_response(500, headers, b"").retry_after_s is None
    assert result_from_response(202, headers, b"").retry_after_s is None


def test_error_text_names_status_and_a_short_body_snippet() -> None:
    result = result_from_response(400, httpx.Headers(), b'{"error": "bad\nnumber"}' + b"x" * 500)
    assert result.outcome is Outcome.REJECTED_PERMANENT
    assert result.error.startswith('HTTP 400: {"error": "bad number"}')
    assert len(result.error) < 140
    assert result_from_response(503, httpx.Headers(), b"").error == "HTTP 503"
    assert result_from_response(202, httpx.Headers(), b"busy").error == ""
