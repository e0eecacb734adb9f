"""Each kind's condition, computed from counters the product already keeps.

A condition returns the subjects it holds for now (``target:sms.otp``,
``tenant:acme``, ``connection:twilio-main``, or ``""`` for the whole service), each with
a one-line summary and the figures behind it. A subject missing from the answer is
clear: its open episode resolves.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.db.models import Count

from deadletters.models import DeadLetter, ReplayItem, ReplayItemOutcome, ReplayStatus
from gateways.models import CircuitState
from gateways.selectors import connection_statuses
from portal.events.selectors import endpoints_disabled_by_delivery
from portal.observability import selectors as ops

GLOBAL = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    subject: str
    summary: str
    details: dict[str, Any]


Condition = Callable[[dict[str, Any], dt.datetime], list[Finding]]


def dead_letters_burst(parameters: dict[str, Any], now: dt.datetime) -> list[Finding]:
    """At least ``count`` dead letters opened in the last ``window_minutes``, per target
    (``per = "target"``) or per tenant (``"tenant"``)."""
    minutes = parameters["window_minutes"]
    since = now - dt.timedelta(minutes=minutes)
    field = "target_key" if parameters["per"] == "target" else "tenant__name"
    rows = (
        DeadLetter.objects.filter(created_at__gt=since, created_at__lte=now)
        .values(field)
        .annotate(n=Count("id"))
        .filter(n__gte=parameters["count"])
        .order_by(field)
    )
    return [
        Finding(
            subject=f"{parameters['per']}:{row[field]}",
            summary=f"{row['n']} dead letter{'' if row['n'] == 1 else 's'} opened in "
            f"{minutes:g} min for "
            f"{parameters['per']} {row[field]}",
            details={"opened": row["n"], "window_minutes": minutes, parameters["per"]: row[field]},
        )
        for row in rows
    ]


def backlog_stale(parameters: dict[str, Any], now: dt.datetime) -> list[Finding]:
    """The oldest due, unclaimed intent has waited more than ``older_than_s``."""
    due, _, oldest_due = ops.pending_summary(now=now)
    if oldest_due is None:
        return []
    age = (now - oldest_due).total_seconds()
    if age <= parameters["older_than_s"]:
        return []
    return [
        Finding(
            subject=GLOBAL,
            summary=f"oldest due intent has waited {age:.0f} s "
            f"(limit {parameters['older_than_s']:g} s); {due} due",
            details={"oldest_due_age_s": round(age, 3), "due": due},
        )
    ]


def sla_breach(parameters: dict[str, Any], now: dt.datetime) -> list[Finding]:
    """A target's intents submitted in the window were accepted within their objective
    less often than ``below_percent``, judged only on ``min_intents`` decided intents and
    when at least ``min_coverage_percent`` of the submitted ones are decided."""
    minutes = parameters["window_minutes"]
    rows = ops.sla_by_target(since=now - dt.timedelta(minutes=minutes), until=now)
    findings = []
    for row in rows:
        if row.share is None or row.coverage is None:
            continue
        if row.denominator < parameters["min_intents"]:
            continue
        if row.coverage * 100 < parameters["min_coverage_percent"]:
            continue
        if row.share * 100 >= parameters["below_percent"]:
            continue
        findings.append(
            Finding(
                subject=f"target:{row.target_key}",
                summary=f"{row.target_key}: {row.share * 100:.1f} % accepted within the SLA "
                f"over {minutes:g} min (objective {parameters['below_percent']:g} %)",
                details={
                    "target": row.target_key,
                    "within_sla": row.numerator,
                    "decided": row.denominator,
                    "submitted": row.submitted,
                    "share_percent": round(row.share * 100, 2),
                    "coverage_percent": round(row.coverage * 100, 2),
                    "window_minutes": minutes,
                },
            )
        )
    return findings


def connection_circuit_open(parameters: dict[str, Any], now: dt.datetime) -> list[Finding]:
    """A connection's circuit is not closed (open, or half-open while it probes), and has
    not been for ``for_s`` seconds."""
    findings = []
    for status in connection_statuses():
        health = status.health
        if health is None or health.state == CircuitState.CLOSED:
            continue
        opened_at = health.opened_at or health.updated_at
        open_for = max((now - opened_at).total_seconds(), 0.0)
        if open_for < parameters["for_s"]:
            continue
        findings.append(
            Finding(
                subject=f"connection:{health.connection_key}",
                summary=f"circuit of connection {health.connection_key} is {health.state} "
                f"({open_for:.0f} s)",
                details={
                    "connection": health.connection_key,
                    "state": health.state,
                    "open_for_s": round(open_for, 3),
                    "last_failure": health.last_failure,
                },
            )
        )
    return findings


def replay_failed(parameters: dict[str, Any], now: dt.datetime) -> list[Finding]:
    """In the last ``window_minutes``, at least ``count`` replays failed: items an executed
    replay could not re-open, and re-opened intents that dead-lettered again."""
    minutes = parameters["window_minutes"]
    since = now - dt.timedelta(minutes=minutes)
    skipped = ReplayItem.objects.filter(
        outcome=ReplayItemOutcome.SKIPPED,
        request__status=ReplayStatus.DONE,
        request__finished_at__gt=since,
        request__finished_at__lte=now,
    ).count()
    failed_again = DeadLetter.objects.filter(
        created_at__gt=since, created_at__lte=now, generation__gt=1
    ).count()
    total = skipped + failed_again
    if total < parameters["count"]:
        return []
    return [
        Finding(
            subject=GLOBAL,
            summary=f"{total} replays failed in {minutes:g} min ({skipped} not re-opened, "
            f"{failed_again} dead-lettered again)",
            details={
                "not_reopened": skipped,
                "dead_lettered_again": failed_again,
                "window_minutes": minutes,
            },
        )
    ]


def webhook_endpoint_disabled(parameters: dict[str, Any], now: dt.datetime) -> list[Finding]:
    """Each client webhook endpoint the engine disabled, while it stays disabled (its
    episode resolves when the tenant or an operator re-enables it)."""
    return [
        Finding(
            subject=f"endpoint:{endpoint.public_id}",
            summary=f"webhook endpoint {endpoint.public_id} of tenant {endpoint.tenant.name} "
            f"disabled ({endpoint.disabled_reason})",
            details={
                "endpoint_id": str(endpoint.public_id),
                "tenant": endpoint.tenant.name,
                "reason": endpoint.disabled_reason,
                "disabled_at": endpoint.disabled_at.isoformat() if endpoint.disabled_at else None,
                # the host only: a URL's path or query may carry the client's own token
                "host": urlsplit(endpoint.url).hostname or "",
            },
        )
        for endpoint in endpoints_disabled_by_delivery()
    ]


CONDITIONS: dict[str, Condition] = {
    "dead_letters.burst": dead_letters_burst,
    "backlog.stale": backlog_stale,
    "sla.breach": sla_breach,
    "connection.circuit_open": connection_circuit_open,
    "replay.failed": replay_failed,
    "webhook_endpoint.disabled": webhook_endpoint_disabled,
}
