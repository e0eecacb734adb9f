"""Read queries behind /metrics, /readyz and the operations dashboard.

Database-agnostic on purpose (SQLite, PostgreSQL, SQL Server): grouping uses Django's
``Trunc`` functions, durations are compared as ``finished_at <= created_at + interval``
(which every backend translates), and anything finer is done in Python over a bounded
number of aggregate rows, never over the rows themselves.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeAlias, TypedDict

from django.db.models import Count, Exists, F, Max, Min, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import TruncHour

from deadletters.models import (
    DeadLetter,
    DeadLetterStatus,
    ReplayItem,
    ReplayRequest,
    ReplayStatus,
)
from intents.models import (
    DEAD_LETTER_STATUSES,
    OPEN_STATUSES,
    TERMINAL_STATUSES,
    Attempt,
    AttemptOutcome,
    Intent,
    IntentStatus,
)

from .models import WorkerHeartbeat

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

# Upper bounds (seconds) of the acceptance-latency buckets the dashboard estimates
# percentiles from; the resolution is the width of the bucket a percentile falls in.
LATENCY_BOUNDS_S: tuple[float, ...] = (
    0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400,
)  # fmt: skip


def _scoped(queryset: QuerySet[Any], tenant_ids: set[int] | None, field: str) -> QuerySet[Any]:
    """``queryset`` limited to ``tenant_ids`` through ``field``.

    ``tenant_ids`` is what ``tenant_ids_visible_to`` gives for a dashboard viewer; ``None``
    is every tenant (what /metrics and /readyz count). Every selector the dashboard calls
    takes it, so no figure or table on it reaches past the viewer's tenants.
    """
    if tenant_ids is None:
        return queryset
    return queryset.filter(**{f"{field}__in": tenant_ids})


# --- backlog (metrics, readiness, dashboard) -------------------------------------------


@dataclasses.dataclass(frozen=True)
class Backlog:
    due: int
    scheduled: int
    in_flight: int
    expired_leases: int
    oldest_due_at: dt.datetime | None
    oldest_due_age_s: float
    open_dead_letters: dict[str, int]
    pending_replays: int

    @property
    def open_dead_letters_total(self) -> int:
        return sum(self.open_dead_letters.values())


def pending_summary(
    *, now: dt.datetime, tenant_ids: set[int] | None = None
) -> tuple[int, int, dt.datetime | None]:
    """(due now, scheduled later, oldest due ``next_attempt_at``) of pending intents.

    One pass over ``intent_due_idx`` (tenant, next_attempt_at) WHERE status = 'pending':
    every column it reads is in that partial index.
    """
    pending = _scoped(Intent.objects.filter(status=IntentStatus.PENDING), tenant_ids, "tenant")
    row = pending.aggregate(
        due=Count("next_attempt_at", filter=Q(next_attempt_at__lte=now)),
        scheduled=Count("next_attempt_at", filter=Q(next_attempt_at__gt=now)),
        oldest=Min("next_attempt_at"),
    )
    oldest = row["oldest"]
    oldest_due = oldest if oldest is not None and oldest <= now else None
    return row["due"], row["scheduled"], oldest_due


def oldest_due_age_s(*, now: dt.datetime) -> float:
    """Age of the oldest intent that is due and not yet claimed: the dispatch lag."""
    _, _, oldest_due = pending_summary(now=now)
    return _age(oldest_due, now)


def _age(when: dt.datetime | None, now: dt.datetime) -> float:
    return max((now - when).total_seconds(), 0.0) if when is not None else 0.0


def backlog(*, now: dt.datetime, tenant_ids: set[int] | None = None) -> Backlog:
    due, scheduled, oldest_due = pending_summary(now=now, tenant_ids=tenant_ids)
    # intent_lease_idx (lease_expires_at) WHERE status = 'in_flight'
    in_flight = _scoped(
        Intent.objects.filter(status=IntentStatus.IN_FLIGHT), tenant_ids, "tenant"
    ).aggregate(
        total=Count("*"), expired=Count("lease_expires_at", filter=Q(lease_expires_at__lt=now))
    )
    # dl_status_reason_idx (status, reason_code, created_at)
    open_dead_letters = dict(
        _scoped(DeadLetter.objects.filter(status=DeadLetterStatus.OPEN), tenant_ids, "tenant")
        .values("reason_code")
        .annotate(n=Count("*"))
        .order_by()
        .values_list("reason_code", "n")
    )
    # replay_status_idx (status, expires_at)
    pending = ReplayRequest.objects.filter(status=ReplayStatus.PENDING)
    if tenant_ids is not None:
        # A request counts for a viewer only when every one of its dead letters is theirs.
        foreign = ReplayItem.objects.exclude(dead_letter__tenant_id__in=tenant_ids)
        pending = pending.exclude(pk__in=foreign.values("request_id"))
    pending_replays = pending.count()
    return Backlog(
        due=due,
        scheduled=scheduled,
        in_flight=in_flight["total"],
        expired_leases=in_flight["expired"],
        oldest_due_at=oldest_due,
        oldest_due_age_s=_age(oldest_due, now),
        open_dead_letters=open_dead_letters,
        pending_replays=pending_replays,
    )


def heartbeat_ages(*, now: dt.datetime) -> dict[str, float]:
    """Seconds since the youngest heartbeat of each kind of process."""
    rows = WorkerHeartbeat.objects.values("kind").annotate(last=Max("seen_at")).order_by("kind")
    return {row["kind"]: _age(row["last"], now) for row in rows}


def heartbeats() -> QuerySet[WorkerHeartbeat]:
    return WorkerHeartbeat.objects.order_by("kind", "-seen_at")


# --- dashboard: attempts, dead letters, latency, SLA ------------------------------------


@dataclasses.dataclass
class GatewayOutcomes:
    gateway: str
    hours: list[dt.datetime]
    # outcome -> one count per hour, aligned with ``hours``
    counts: dict[str, list[int]]

    @property
    def total(self) -> int:
        return sum(sum(series) for series in self.counts.values())

    def totals_by_outcome(self) -> dict[str, int]:
        return {outcome: sum(series) for outcome, series in self.counts.items()}


def hour_slots(*, since: dt.datetime, until: dt.datetime) -> list[dt.datetime]:
    """Every UTC hour start from the hour holding ``since`` up to ``until``."""
    start = since.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    slots = []
    while start < until:
        slots.append(start)
        start += dt.timedelta(hours=1)
    return slots


def attempt_outcomes_by_gateway(
    *, since: dt.datetime, until: dt.datetime, tenant_ids: set[int] | None = None
) -> list[GatewayOutcomes]:
    """Attempts finished in the window, per gateway, outcome and UTC hour (``attempt_finished_idx``)."""
    finished = Attempt.objects.filter(finished_at__gte=since, finished_at__lt=until)
    rows = (
        _scoped(finished, tenant_ids, "intent__tenant")
        .annotate(
            hour=TruncHour("finished_at", tzinfo=dt.UTC),
            gateway=F("intent__target_revision__gateway"),
        )
        .values("hour", "gateway", "outcome")
        .annotate(n=Count("id"))
        .order_by()
    )
    slots = hour_slots(since=since, until=until)
    index = {slot: i for i, slot in enumerate(slots)}
    by_gateway: dict[str, GatewayOutcomes] = {}
    for row in rows:
        hour = row["hour"].astimezone(dt.UTC)
        series = by_gateway.setdefault(
            row["gateway"], GatewayOutcomes(row["gateway"], slots, {})
        ).counts.setdefault(row["outcome"], [0] * len(slots))
        series[index[hour]] += row["n"]
    outcome_order = {outcome: i for i, outcome in enumerate(AttemptOutcome.values)}
    for outcomes in by_gateway.values():
        outcomes.counts = dict(
            sorted(outcomes.counts.items(), key=lambda item: outcome_order.get(item[0], 99))
        )
    return [by_gateway[name] for name in sorted(by_gateway)]


def dead_letters_by_reason(
    *, since: dt.datetime, until: dt.datetime, tenant_ids: set[int] | None = None
) -> list[tuple[str, int]]:
    created = DeadLetter.objects.filter(created_at__gte=since, created_at__lt=until)
    rows = (
        _scoped(created, tenant_ids, "tenant")
        .values("reason_code")
        .annotate(n=Count("id"))
        .order_by("-n", "reason_code")
    )
    return [(row["reason_code"], row["n"]) for row in rows]


def delivery_by_status(
    *, since: dt.datetime, until: dt.datetime, tenant_ids: set[int] | None = None
) -> list[tuple[str, int]]:
    """Intents accepted in [since, until) by what their receipts said (``delivery_status``;
    ``unknown`` also for a connection that sends none). ``intent_finished_idx``."""
    accepted = Intent.objects.filter(
        status=IntentStatus.ACCEPTED, finished_at__gte=since, finished_at__lt=until
    )
    rows = (
        _scoped(accepted, tenant_ids, "tenant")
        .values("delivery_status")
        .annotate(n=Count("id"))
        .order_by("delivery_status")
    )
    counts = {row["delivery_status"] or "unknown": 0 for row in rows}
    for row in rows:
        counts[row["delivery_status"] or "unknown"] += row["n"]
    order = ("sent", "delivered", "undelivered", "unknown")
    return sorted(counts.items(), key=lambda item: order.index(item[0]) if item[0] in order else 9)


@dataclasses.dataclass(frozen=True)
class LatencySummary:
    target_key: str
    count: int
    # cumulative counts: accepted within LATENCY_BOUNDS_S[i] seconds
    cumulative: tuple[int, ...]

    @property
    def p50_s(self) -> float | None:
        return quantile_from_buckets(LATENCY_BOUNDS_S, self.cumulative, self.count, 0.50)

    @property
    def p95_s(self) -> float | None:
        return quantile_from_buckets(LATENCY_BOUNDS_S, self.cumulative, self.count, 0.95)

    def bucket_counts(self) -> list[int]:
        """Per-bucket (not cumulative) counts, the last one being 'beyond the last bound'."""
        counts, previous = [], 0
        for value in self.cumulative:
            counts.append(value - previous)
            previous = value
        counts.append(self.count - previous)
        return counts


def quantile_from_buckets(
    bounds: tuple[float, ...], cumulative: tuple[int, ...], total: int, q: float
) -> float | None:
    """Estimate a quantile by linear interpolation inside its bucket, as Prometheus'
    ``histogram_quantile`` does. ``math.inf`` when it lies beyond the last bound."""
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0
    for bound, count in zip(bounds, cumulative, strict=True):
        if count >= rank and count > below:
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = float(bound), count
    return math.inf


def acceptance_latency(
    *, since: dt.datetime, until: dt.datetime, tenant_ids: set[int] | None = None
) -> tuple[LatencySummary, list[LatencySummary]]:
    """Submission-to-acceptance latency of intents accepted in the window: overall and
    per target, as bucket counts computed by the database in one query
    (``intent_finished_idx`` (status, finished_at))."""
    buckets = {
        f"le_{i}": Count(
            "id", filter=Q(finished_at__lte=F("created_at") + dt.timedelta(seconds=bound))
        )
        for i, bound in enumerate(LATENCY_BOUNDS_S)
    }
    # The plugin types the rows from the literal keywords only; the ``le_<i>`` buckets are
    # passed through **buckets, so the rows are read as plain mappings.
    accepted = Intent.objects.filter(
        status=IntentStatus.ACCEPTED, finished_at__gte=since, finished_at__lt=until
    )
    rows: QuerySet[Intent, Mapping[str, Any]] = (
        _scoped(accepted, tenant_ids, "tenant")
        .values("target_key")
        .annotate(total=Count("id"), **buckets)
        .order_by("target_key")
    )
    per_target = [
        LatencySummary(
            row["target_key"],
            row["total"],
            tuple(row[f"le_{i}"] for i in range(len(LATENCY_BOUNDS_S))),
        )
        for row in rows
    ]
    overall = LatencySummary(
        "all targets",
        sum(s.count for s in per_target),
        tuple(sum(s.cumulative[i] for s in per_target) for i in range(len(LATENCY_BOUNDS_S))),
    )
    return overall, per_target


@dataclasses.dataclass(frozen=True)
class SlaRow:
    """Intents submitted in the window for one target.

    ``numerator``: accepted within the contract's ``acceptance_deadline_s``.
    ``denominator``: terminal intents, less those the client cancelled.
    ``coverage``: terminal / submitted; the share whose outcome is already known.
    """

    target_key: str
    objectives_s: tuple[float, ...]
    submitted: int
    terminal: int
    cancelled: int
    accepted: int
    numerator: int

    @property
    def denominator(self) -> int:
        return self.terminal - self.cancelled

    @property
    def share(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    @property
    def coverage(self) -> float | None:
        return self.terminal / self.submitted if self.submitted else None


class _SlaCounts(TypedDict):
    target_key: str
    terminal: int
    cancelled: int
    accepted: int
    open: int


def sla_by_target(
    *, since: dt.datetime, until: dt.datetime, tenant_ids: set[int] | None = None
) -> list[SlaRow]:
    """Share of intents submitted in [since, until) accepted within their objective.

    The objective is the frozen contract's ``acceptance_deadline_s``. Terminal intents
    are found through ``intent_finished_idx`` (a terminal intent submitted in the window
    finished after ``since``); the comparison against the objective runs in the
    database, once per distinct (target, objective) pair.
    """
    window = Q(created_at__gte=since, created_at__lt=until)
    if tenant_ids is not None:
        window &= Q(tenant__in=tenant_ids)
    terminal = Intent.objects.filter(window, status__in=TERMINAL_STATUSES, finished_at__gte=since)
    totals = _sla_counts_by_target(window=window, terminal=terminal)
    objectives, within = _accepted_within_objective(terminal.filter(status=IntentStatus.ACCEPTED))
    return [
        SlaRow(
            target_key=key,
            objectives_s=tuple(sorted(objectives.get(key, ()))),
            submitted=entry["terminal"] + entry["open"],
            terminal=entry["terminal"],
            cancelled=entry["cancelled"],
            accepted=entry["accepted"],
            numerator=within.get(key, 0),
        )
        for key, entry in sorted(totals.items())
    ]


def _sla_counts_by_target(*, window: Q, terminal: QuerySet[Intent]) -> dict[str, _SlaCounts]:
    """Terminal (cancelled, accepted) and still-open intents of the window, per target."""
    totals: dict[str, _SlaCounts] = {}
    for row in (
        terminal.values("target_key")
        .annotate(
            terminal=Count("id"),
            cancelled=Count("id", filter=Q(status=IntentStatus.CANCELLED)),
            accepted=Count("id", filter=Q(status=IntentStatus.ACCEPTED)),
        )
        .order_by()
    ):
        totals[row["target_key"]] = {**row, "open": 0}
    for open_row in (
        Intent.objects.filter(window, status__in=OPEN_STATUSES)
        .values("target_key")
        .annotate(n=Count("id"))
        .order_by()
    ):
        entry = totals.setdefault(
            open_row["target_key"],
            {
                "target_key": open_row["target_key"],
                "terminal": 0,
                "cancelled": 0,
                "accepted": 0,
                "open": 0,
            },
        )
        entry["open"] = open_row["n"]
    return totals


def _accepted_within_objective(
    accepted: QuerySet[Intent],
) -> tuple[dict[str, set[float]], dict[str, int]]:
    """Per target: its contracts' objectives (seconds), and how many accepted intents met
    theirs, counted by the database once per distinct (target, objective) pair."""
    objectives: dict[str, set[float]] = {}
    within: dict[str, int] = {}
    pairs = (
        accepted.values_list("target_key", "contract__acceptance_deadline_s").distinct().order_by()
    )
    for target_key, objective in pairs:
        if objective is None:  # a contract without an objective cannot meet it
            continue
        seconds = float(objective)
        objectives.setdefault(target_key, set()).add(seconds)
        within[target_key] = (
            within.get(target_key, 0)
            + accepted.filter(
                target_key=target_key,
                contract__acceptance_deadline_s=objective,
                finished_at__lte=F("created_at") + dt.timedelta(seconds=seconds),
            ).count()
        )
    return objectives, within


# --- reconciliation ---------------------------------------------------------------------


class TimedOutAnnotations(TypedDict):
    last_outcome: str | None
    last_attempt_at: dt.datetime | None
    last_connection: str | None
    gateway: str


if TYPE_CHECKING:
    TimedOutIntent: TypeAlias = WithAnnotations[Intent, TimedOutAnnotations]


def timed_out_intents(
    *, since: dt.datetime, tenant_ids: set[int] | None = None
) -> QuerySet[TimedOutIntent]:
    """Intents whose last attempt timed out, so the gateway may have accepted them.

    Still retrying (pending after at least one attempt), or dead-lettered (failed,
    exhausted, expired) and either finished since ``since`` or holding an open dead
    letter. Annotated with ``last_outcome``, ``last_attempt_at``, ``last_connection``
    (the connection that attempt went through; '' before connections existed) and
    ``gateway``.
    """
    last_attempt = Attempt.objects.filter(intent=OuterRef("pk")).order_by("-number")
    open_dead_letter = DeadLetter.objects.filter(
        intent=OuterRef("pk"), status=DeadLetterStatus.OPEN
    )
    timed_out: QuerySet[TimedOutIntent] = (
        _scoped(Intent.objects.all(), tenant_ids, "tenant")
        .filter(
            Q(status=IntentStatus.PENDING, attempts_count__gt=0)
            | (
                Q(status__in=DEAD_LETTER_STATUSES)
                & (Q(finished_at__gte=since) | Exists(open_dead_letter))
            )
        )
        .annotate(
            last_outcome=Subquery(last_attempt.values("outcome")[:1]),
            last_attempt_at=Subquery(last_attempt.values("finished_at")[:1]),
            last_connection=Subquery(last_attempt.values("connection")[:1]),
            gateway=F("target_revision__gateway"),
        )
        .filter(last_outcome=AttemptOutcome.TIMEOUT)
        .defer("payload", "contract")
        .order_by("-last_attempt_at", "-id")
    )
    return timed_out
