"""What an HTTP answer means for delivery: the status code and ``Retry-After``.

One table for every adapter, so "is this worth retrying?" is decided in one place.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math

from .base import Outcome

# 4xx codes that say "not now" rather than "never": timeout, too early, rate limited.
TRANSIENT_CLIENT_ERRORS = frozenset({408, 425, 429})
# Only these carry a Retry-After we honour; elsewhere the header means nothing to us.
RETRY_AFTER_STATUSES = frozenset({429, 503})


def classify_status(status_code: int) -> Outcome:
    """The attempt outcome of a gateway's HTTP status code."""
    if 200 <= status_code < 300:
        return Outcome.ACCEPTED
    if status_code in TRANSIENT_CLIENT_ERRORS or 500 <= status_code < 600:
        return Outcome.REJECTED_TRANSIENT
    if 400 <= status_code < 500:
        return Outcome.REJECTED_PERMANENT
    if 300 <= status_code < 400:
        # Redirects are never followed (one could lead off the allow-list), so a 3xx
        # means our configured URL is wrong: our fault, not the gateway's verdict.
        return Outcome.EXECUTOR_ERROR
    # 1xx as a final answer or a code outside the standard range: a confused gateway
    # or proxy, which may well answer properly next time.
    return Outcome.REJECTED_TRANSIENT


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, or None when absent or garbage.

    Accepts delta-seconds (``"120"``, also ``"1.5"`` as some gateways send) and an
    HTTP-date; a date in the past or a negative number means "now" (0.0).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        return _seconds_until_http_date(text, now=now)
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def _seconds_until_http_date(text: str, *, now: dt.datetime | None) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT by definition (RFC 9110 5.6.7)
        when = when.replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    return max((when - now).total_seconds(), 0.0)
