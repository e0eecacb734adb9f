"""Per-tenant request rate: a fixed one-minute window counted in the database.

The web runs as several gunicorn processes (and machines), so a per-process cache
(locmem) would let each process admit the full rate. One row per tenant per minute
(``ApiRateWindow``) is shared by all of them, and admission is a single conditional
UPDATE, so concurrent requests can never push a window past its limit:

    UPDATE ... SET count = count + 1 WHERE tenant = t AND window_start = w AND count < limit

A fixed window admits at most twice the limit across a window boundary; that burst is
the accepted price of one row write per request instead of a sliding log.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from rest_framework.throttling import BaseThrottle

from intents.models import ApiRateWindow
from portal.accounts.models import Tenant

WINDOW = dt.timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after_s: float


def window_start_for(now: dt.datetime) -> dt.datetime:
    return now.replace(second=0, microsecond=0)


def rate_window_hit(*, tenant: Tenant, limit: int, now: dt.datetime) -> RateDecision:
    """Count one request in ``tenant``'s current window unless it is already full."""
    start = window_start_for(now)
    retry_after = ((start + WINDOW) - now).total_seconds()
    if limit <= 0:
        return RateDecision(allowed=False, retry_after_s=retry_after)

    if _increment_below_limit(tenant, start, limit):
        return RateDecision(allowed=True, retry_after_s=0)
    if ApiRateWindow.objects.filter(tenant=tenant, window_start=start).exists():
        # The row may have been opened by a concurrent request after our UPDATE missed
        # it; only an UPDATE that runs while the row exists can say the window is full.
        allowed = _increment_below_limit(tenant, start, limit)
        return RateDecision(allowed=allowed, retry_after_s=0 if allowed else retry_after)
    try:
        with transaction.atomic():
            ApiRateWindow.objects.create(tenant=tenant, window_start=start, count=1)
    except IntegrityError:
        # Another process opened this window first: count against its row.
        allowed = _increment_below_limit(tenant, start, limit)
        return RateDecision(allowed=allowed, retry_after_s=0 if allowed else retry_after)
    # Opening a window is the moment to drop this tenant's past ones (once a minute).
    ApiRateWindow.objects.filter(tenant=tenant, window_start__lt=start).delete()
    return RateDecision(allowed=True, retry_after_s=0)


def _increment_below_limit(tenant: Tenant, start: dt.datetime, limit: int) -> bool:
    updated = ApiRateWindow.objects.filter(
        tenant=tenant, window_start=start, count__lt=limit
    ).update(count=F("count") + 1)
    return updated == 1


class TenantRateThrottle(BaseThrottle):
    """``tenant.rate_limit_per_minute`` requests per minute; 429 ``rate_limited`` beyond."""

    def __init__(self) -> None:
        self.retry_after_s: float | None = None

    def allow_request(self, request: Any, view: Any) -> bool:
        tenant = getattr(request, "tenant", None)
        if tenant is None:  # unauthenticated requests never get this far
            return True
        decision = rate_window_hit(
            tenant=tenant, limit=tenant.rate_limit_per_minute, now=timezone.now()
        )
        self.retry_after_s = decision.retry_after_s
        return decision.allowed

    def wait(self) -> float | None:
        return self.retry_after_s
