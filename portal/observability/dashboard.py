"""The operations dashboard's content: selectors' numbers turned into rows and charts."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from django.conf import settings
from django.utils.safestring import SafeString

from portal.escalation import selectors as escalation_selectors

from . import charts, selectors
from .reconciliation import DEFAULT_LOOKBACK

DEFAULT_HOURS = 24
MAX_HOURS = 7 * 24
RECONCILE_ROWS = 20


def window_hours(raw: str | None) -> int:
    """``?hours=`` clamped to 1..168; the default is the last 24 hours."""
    try:
        hours = int(raw) if raw else DEFAULT_HOURS
    except ValueError:
        hours = DEFAULT_HOURS
    return min(max(hours, 1), MAX_HOURS)


def format_seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if math.isinf(value):
        return f"> {format_seconds(selectors.LATENCY_BOUNDS_S[-1])}"
    if value < 120:
        return f"{value:.2f} s" if value < 10 else f"{value:.0f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def format_share(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _bucket_labels() -> list[str]:
    labels = [f"≤{format_seconds(bound).replace(' ', '')}" for bound in selectors.LATENCY_BOUNDS_S]
    return [*labels, f">{format_seconds(selectors.LATENCY_BOUNDS_S[-1]).replace(' ', '')}"]


def _gateway_panels(
    *, since: dt.datetime, now: dt.datetime, hours: int, tenant_ids: set[int] | None
) -> list[dict[str, Any]]:
    """One panel per gateway: its attempts per hour by outcome, as totals and a chart."""
    label_every = max(hours // 8, 1)
    gateways = []
    for outcomes in selectors.attempt_outcomes_by_gateway(
        since=since, until=now, tenant_ids=tenant_ids
    ):
        # Dates on every label: a 24-hour window shows 10:00 at both ends otherwise.
        labels = [slot.strftime("%m-%d %H:00") for slot in outcomes.hours]
        gateways.append(
            {
                "name": outcomes.gateway,
                "total": outcomes.total,
                "totals": outcomes.totals_by_outcome(),
                "chart": charts.stacked_bar_chart(
                    labels=labels,
                    series=outcomes.counts,
                    title=f"Attempts per hour through {outcomes.gateway}, by outcome",
                    label_every=label_every,
                ),
                "legend": charts.legend(list(outcomes.counts)),
            }
        )
    return gateways


def _latency_rows(
    overall: selectors.LatencySummary, per_target: list[selectors.LatencySummary]
) -> list[dict[str, Any]]:
    return [
        {
            "target": s.target_key,
            "count": s.count,
            "p50": format_seconds(s.p50_s),
            "p95": format_seconds(s.p95_s),
        }
        for s in [overall, *per_target]
    ]


def _sla_rows(
    *, since: dt.datetime, now: dt.datetime, tenant_ids: set[int] | None
) -> list[dict[str, Any]]:
    return [
        {
            "target": row.target_key,
            "objective": ", ".join(format_seconds(o) for o in row.objectives_s) or "—",
            "numerator": row.numerator,
            "denominator": row.denominator,
            "share": format_share(row.share),
            "submitted": row.submitted,
            "terminal": row.terminal,
            "cancelled": row.cancelled,
            "coverage": format_share(row.coverage),
        }
        for row in selectors.sla_by_target(since=since, until=now, tenant_ids=tenant_ids)
    ]


def _heartbeat_rows(*, now: dt.datetime) -> list[dict[str, Any]]:
    return [
        {
            "worker": hb.worker_id,
            "kind": hb.kind,
            "age": format_seconds(max((now - hb.seen_at).total_seconds(), 0.0)),
            # Past the readiness limit: a process that stopped (or hangs), not a live one.
            "stale": (now - hb.seen_at).total_seconds() > settings.READINESS_MAX_HEARTBEAT_AGE_S,
        }
        for hb in selectors.heartbeats()[:50]
    ]


def _latency_chart(overall: selectors.LatencySummary) -> SafeString:
    return charts.stacked_bar_chart(
        labels=_bucket_labels(),
        series={"accepted": overall.bucket_counts()},
        title="Submission-to-acceptance latency of accepted intents",
        label_every=3,
        height=180,
    )


def dashboard_context(
    *, now: dt.datetime, hours: int, tenant_ids: set[int] | None = None
) -> dict[str, Any]:
    """Everything the dashboard shows, limited to ``tenant_ids`` (``None``: all tenants).

    Process heartbeats are the only rows shown unscoped: they belong to no tenant.
    """
    since = now - dt.timedelta(hours=hours)
    gateways = _gateway_panels(since=since, now=now, hours=hours, tenant_ids=tenant_ids)
    dead_letters = selectors.dead_letters_by_reason(since=since, until=now, tenant_ids=tenant_ids)
    overall, per_target = selectors.acceptance_latency(
        since=since, until=now, tenant_ids=tenant_ids
    )
    sla_rows = _sla_rows(since=since, now=now, tenant_ids=tenant_ids)
    backlog = selectors.backlog(now=now, tenant_ids=tenant_ids)
    # Escalations concern the whole service: only viewers of every tenant see them.
    episodes = escalation_selectors.open_and_recent_episodes() if tenant_ids is None else None
    timed_out = selectors.timed_out_intents(since=now - DEFAULT_LOOKBACK, tenant_ids=tenant_ids)
    return {
        "now": now,
        "hours": hours,
        "since": since,
        "backlog": backlog,
        "oldest_due_age": format_seconds(backlog.oldest_due_age_s),
        "heartbeats": _heartbeat_rows(now=now),
        "gateways": gateways,
        "dead_letters": dead_letters,
        "dead_letter_chart": charts.horizontal_bar_chart(
            items=dead_letters, title="Dead letters created in the window, by reason"
        ),
        "delivery": selectors.delivery_by_status(since=since, until=now, tenant_ids=tenant_ids),
        "latency_rows": _latency_rows(overall, per_target),
        "latency_chart": _latency_chart(overall),
        "sla_rows": sla_rows,
        "timed_out_count": timed_out.count(),
        "timed_out": list(timed_out[:RECONCILE_ROWS]),
        "reconcile_lookback_days": DEFAULT_LOOKBACK.days,
        "escalations": episodes,
    }
