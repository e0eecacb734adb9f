"""What a /metrics scrape returns.

Counters and histograms (``metrics.py``) are recorded by whichever process did the
work. With ``PROMETHEUS_MULTIPROC_DIR`` set in the environment of every process (before
it starts: prometheus-client reads it at import), each process writes its values to
files in that folder and a scrape sums them, so the web server, the django-q2 workers
and the dispatcher all count. Without it, the scrape shows this process's registry
(fine for a single process, wrong for ``make run``).

Backlog gauges are not recorded by anyone: ``DatabaseCollector`` reads them from the
database at scrape time, so they are right whichever process serves the scrape.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping

from django.db import DatabaseError
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from gateways.selectors import circuit_state_values
from portal import clock
from portal.audit.selectors import audit_head_sequence
from portal.escalation.selectors import open_episode_counts
from portal.events.selectors import disabled_endpoint_counts

from . import selectors
from .logging import get_logger

logger = get_logger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# prometheus-client leaves MultiProcessCollector's constructor unannotated: typed here once.
_multiprocess_collector: Callable[..., object] = MultiProcessCollector


class DatabaseCollector:
    """Backlog, dead-letter and heartbeat gauges, from a handful of indexed queries."""

    def describe(self) -> list[Metric]:
        return []  # never query the database at registration

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "portal_database_up", "1 when this scrape could read the database, else 0"
        )
        try:
            now = clock.db_now()
            backlog = selectors.backlog(now=now)
            heartbeat_ages = selectors.heartbeat_ages(now=now)
            circuits = circuit_state_values()
            audit_head = audit_head_sequence()
            disabled_endpoints = disabled_endpoint_counts()
            episodes_open = open_episode_counts()
        except DatabaseError as exc:
            logger.warning("metrics.database_unavailable", error=str(exc))
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _backlog_gauges(backlog)
        yield _labelled_gauge(
            "portal_worker_heartbeat_age_seconds",
            "Seconds since the youngest heartbeat of each kind of process",
            label="kind",
            values=heartbeat_ages,
        )
        yield _labelled_gauge(
            "portal_connection_circuit_state",
            "Circuit breaker of each connection: 0 closed, 1 half-open, 2 open",
            label="connection",
            values=circuits,
        )
        yield _labelled_gauge(
            "portal_webhook_endpoints_disabled",
            "Client webhook endpoints disabled now, by reason (gone: a 410; failing: every "
            "attempt failed for WEBHOOK_DISABLE_AFTER_S; client; operator)",
            label="reason",
            values=disabled_endpoints,
        )
        yield _labelled_gauge(
            "portal_escalation_episodes_open",
            "Escalation episodes open now, by rule kind",
            label="kind",
            values=episodes_open,
        )
        # A checkpoint of the audit chain outside the database: Prometheus keeps its
        # history, so a tail cut later (head row rewritten too) shows as a drop, and
        # `audit_verify --expect-at-least` can check against the highest value seen.
        yield _gauge("portal_audit_head_sequence", "Sequence of the newest audit event", audit_head)


def _backlog_gauges(backlog: selectors.Backlog) -> Iterator[Metric]:
    """The intents waiting, leased or dead-lettered, and the replays awaiting approval."""
    yield _gauge(
        "portal_backlog_due_intents", "Pending intents due now, not yet claimed", backlog.due
    )
    yield _gauge(
        "portal_backlog_scheduled_intents",
        "Pending intents scheduled for a later attempt",
        backlog.scheduled,
    )
    yield _gauge(
        "portal_backlog_in_flight_intents", "Intents leased to a worker", backlog.in_flight
    )
    yield _gauge(
        "portal_backlog_expired_leases",
        "In-flight intents whose lease has expired (the sweeper reclaims them)",
        backlog.expired_leases,
    )
    yield _gauge(
        "portal_backlog_oldest_due_age_seconds",
        "Age of the oldest due, unclaimed intent (0 when none): the dispatch lag",
        backlog.oldest_due_age_s,
    )
    yield _gauge(
        "portal_dead_letters_open",
        "Dead letters waiting for an operator",
        backlog.open_dead_letters_total,
    )
    yield _labelled_gauge(
        "portal_dead_letters_open_by_reason",
        "Dead letters waiting for an operator, by reason",
        label="reason",
        values=backlog.open_dead_letters,
    )
    yield _gauge(
        "portal_replay_requests_pending",
        "Replay requests waiting for an approver",
        backlog.pending_replays,
    )


def _labelled_gauge(
    name: str, documentation: str, *, label: str, values: Mapping[str, float]
) -> GaugeMetricFamily:
    """One sample per label value, sorted by it."""
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class _ThisProcess:
    """The default registry, forwarded, for single-process use."""

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def multiprocess_dir() -> str:
    return os.environ.get(MULTIPROC_ENV, "")


def scrape_registry(*, include_database: bool = True) -> CollectorRegistry:
    """A registry built for one scrape: every process's metrics plus the database's."""
    registry = CollectorRegistry(auto_describe=False)
    path = multiprocess_dir()
    if path:
        _multiprocess_collector(registry, path=path)
    else:
        registry.register(_ThisProcess())
    if include_database:
        registry.register(DatabaseCollector())
    return registry


def render_latest() -> bytes:
    return generate_latest(scrape_registry())
