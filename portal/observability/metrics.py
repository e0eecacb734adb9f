"""Prometheus metrics the engine records. Served at /metrics (see views.py).

With ``PROMETHEUS_MULTIPROC_DIR`` set (``make run`` and production do), every web and
worker process writes to that folder and a scrape sums them.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, disable_created_metrics

# No ``*_created`` gauge per counter and histogram: they double the series, and the
# multi-process collector never reports them, so scrapes look alike in either mode.
disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated in prometheus_client

INTENTS_CREATED = Counter(
    "portal_intents_created_total", "Intents accepted by the API", ["tenant", "target"]
)
ATTEMPTS = Counter("portal_attempts_total", "Delivery attempts by outcome", ["gateway", "outcome"])
RETRIES_SCHEDULED = Counter(
    "portal_retries_scheduled_total", "Attempts that scheduled another", ["gateway"]
)
INTENTS_FINISHED = Counter(
    "portal_intents_finished_total", "Intents that reached a terminal state", ["reason"]
)
DEAD_LETTERS = Counter("portal_dead_letters_total", "Dead letters created", ["reason"])
REPLAYS = Counter("portal_replays_total", "Replay requests by final outcome", ["outcome"])
LEASES_RECLAIMED = Counter("portal_leases_reclaimed_total", "Expired leases reclaimed")
ATTEMPT_DURATION = Histogram(
    "portal_attempt_duration_seconds",
    "Gateway call duration",
    ["gateway"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ACCEPTANCE_LATENCY = Histogram(
    "portal_acceptance_latency_seconds",
    "Submission to gateway acceptance",
    ["target"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
DISPATCH_LAG = Histogram(
    "portal_dispatch_lag_seconds",
    "Claim time minus next_attempt_at",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
RECONCILED = Counter(
    "portal_reconciliations_total",
    "Timed-out intents a gateway status query settled, by result",
    ["result"],
)
RETENTION_PURGED = Counter(
    "portal_retention_purged_total", "Rows removed by the retention purge", ["kind"]
)
CONNECTION_ATTEMPTS = Counter(
    "portal_connection_attempts_total",
    "Delivery attempts by connection and outcome",
    ["connection", "outcome"],
)
CONNECTION_DEFERRALS = Counter(
    "portal_connection_deferrals_total",
    "Intents deferred without an attempt: a throttle wait or an open circuit",
    ["connection", "reason"],
)
RECEIPTS = Counter(
    "portal_receipts_total",
    "Delivery receipts received, by connection and what they did (applied, stored, "
    "duplicate, ignored)",
    ["connection", "result"],
)
DELIVERY_LATENCY = Histogram(
    "portal_delivery_latency_seconds",
    "Acceptance to the final delivery receipt, per clock (ours or the provider's, never mixed)",
    ["clock", "status"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400),
)
