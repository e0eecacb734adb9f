"""Executing a claimed batch: send every message concurrently, then record every outcome.

Gateway calls run concurrently on one event loop, so a batch's wall time is its slowest
call, not the sum. Outcomes are recorded in one transaction per batch: each attempt row
is written with its intent's new state, and only while this batch still holds the
lease, so a late answer after the sweeper reclaimed an intent is ignored.

The intents' new states are written with one parameterised UPDATE per row, sent as a
single ``executemany`` (pipelined by psycopg): ``bulk_update`` would build and compile a
``CASE WHEN`` expression per field per row, which cost several times the writes
themselves.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from django.db import connection, models, transaction

from gateways.base import RESULT_ERROR_CHARS, GatewayMessage, GatewayResult, Outcome
from gateways.circuit import ConnectionOutcomes, circuit_record
from gateways.receipts import receipts_expected
from gateways.registry import GatewaySession
from gateways.secrets import resolver as secret_resolver
from portal import clock
from portal.observability import lifecycle, metrics, tracing
from portal.sql_limits import column_width

from .models import (
    TERMINAL_STATUSES,
    Attempt,
    AttemptOutcome,
    DeliveryStatus,
    Intent,
    IntentStatus,
    ReasonCode,
)
from .retry import Decision, RetryPolicy, decide_after_attempt
from .routing import THROTTLED, Deferral, Plan, Route, cursor_after, plan_batch
from .selectors import expired_leases
from .signals import attempts_recorded, intents_changed, intents_dead_lettered
from .suppressions import recipients_of, suppression_add
from .transitions import finish, release_lease

EXECUTION_FIELDS = (
    "id",
    "public_id",
    "tenant_id",
    "target_key",
    "contract",
    "payload",
    "status",
    "attempts_count",
    "max_attempts",
    "attempt_timeout_s",
    "deadline_at",
    "cancel_requested",
    "correlation_id",
    "traceparent",
    "generation",
    "internal",
    "lease_owner",
    "connection",
    "connection_cursor",
    "created_at",
)
RECORDED_FIELDS = (
    "status",
    "attempts_count",
    "next_attempt_at",
    "lease_owner",
    "lease_expires_at",
    "reason_code",
    "gateway_message_id",
    "finished_at",
    "updated_at",
    "connection",
    "connection_cursor",
    "delivery_status",
)
# What recording reads (the decision, dead letters, metrics, log lines) and writes back:
# every recorded field is loaded, so writing one that ``_apply`` left alone costs no
# query; the payload is not, it was sent already.
RECORDING_FIELDS = tuple(
    name for name in dict.fromkeys((*EXECUTION_FIELDS, *RECORDED_FIELDS)) if name != "payload"
)


ATTEMPT_ERROR_CHARS = column_width(Attempt, "error")


@dataclasses.dataclass(slots=True)
class AttemptReport:
    """What happened to one intent of a batch, before it is recorded."""

    intent_id: int
    result: GatewayResult | None  # None: no attempt was made (deadline or cancel)
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    duration_ms: int = 0
    outcome_without_attempt: Decision | None = None
    connection: str = ""  # the connection the attempt went out through
    connection_cursor: int | None = None  # where the next attempt starts
    deferral: Deferral | None = None  # not sent: throttled or circuit open, not charged
    suppress: list[str] = dataclasses.field(default_factory=list)  # recipients to suppress
    receipts_expected: bool = False  # the connection reports delivery after acceptance


def _recipients_to_suppress(intent: Intent, result: GatewayResult) -> list[str]:
    if not result.suppress_recipient:
        return []
    return recipients_of(intent.contract["gateway"], json.loads(bytes(intent.payload)))


async def _send_one(
    session: GatewaySession, route: Route
) -> tuple[GatewayResult, dt.datetime, dt.datetime, int]:
    intent, timeout_s = route.intent, route.timeout_s
    started = clock.now()
    t0 = time.perf_counter()
    with lifecycle.attempt(
        intent, gateway=intent.contract["gateway"], timeout_s=timeout_s
    ) as logged:
        try:
            provider = session.connection(route.spec.config)
            message = GatewayMessage(
                idempotency_key=str(intent.public_id),
                correlation_id=lifecycle.correlation_id_of(intent),
                payload=json.loads(bytes(intent.payload)),
            )
            with tracing.provider_call_span(
                connection=route.spec.key, provider=route.spec.config.provider
            ):
                result = await provider.send(message, timeout_s=timeout_s)
            if result.auth_failed:  # refused credentials: the next use reads them afresh
                for reference in route.spec.config.secrets.values():
                    session.secrets.invalidate(reference)
        except Exception as exc:  # our own fault: a bad provider or configuration
            result = GatewayResult(
                Outcome.EXECUTOR_ERROR, error=f"{type(exc).__name__}: {exc}"[:RESULT_ERROR_CHARS]
            )
        result = _scrubbed(result)
        logged.result = result
    elapsed = time.perf_counter() - t0
    return result, started, started + dt.timedelta(seconds=elapsed), int(elapsed * 1000)


def _scrubbed(result: GatewayResult) -> GatewayResult:
    """The result without any secret value, whatever the provider put in its error."""
    error = secret_resolver.scrub(result.error) if result.error else ""
    return result if error == result.error else dataclasses.replace(result, error=error)


async def _send_routes(
    routes: list[Route],
) -> list[tuple[GatewayResult, dt.datetime, dt.datetime, int]]:
    async with GatewaySession() as session:
        return await asyncio.gather(*(_send_one(session, route) for route in routes))


def execute_batch(*, lease_token: str, intent_ids: Iterable[int]) -> int:
    """Attempt every intent of a claimed batch that this lease still owns; returns the count."""
    intents = list(
        Intent.objects.filter(
            id__in=list(intent_ids), lease_owner=lease_token, status=IntentStatus.IN_FLIGHT
        ).only(*EXECUTION_FIELDS)
    )
    if not intents:
        return 0
    now = clock.db_now()
    reports: list[AttemptReport] = []
    to_send: list[tuple[Intent, float]] = []
    for intent in intents:
        remaining = (intent.deadline_at - now).total_seconds()
        if intent.cancel_requested:
            decision = Decision(IntentStatus.CANCELLED, ReasonCode.CANCELLED_BY_CLIENT)
            reports.append(AttemptReport(intent.id, None, outcome_without_attempt=decision))
        elif remaining <= 0:
            decision = Decision(IntentStatus.EXPIRED, ReasonCode.DEADLINE_PASSED)
            reports.append(AttemptReport(intent.id, None, outcome_without_attempt=decision))
        else:
            # Never let an attempt run past the deadline.
            to_send.append((intent, min(intent.attempt_timeout_s, remaining)))
    plan = plan_batch(to_send, now=now) if to_send else Plan()
    reports.extend(_deferred_reports(plan))
    if plan.routes:
        sent = asyncio.run(_send_routes(plan.routes))
        for route, (result, started, finished, ms) in zip(plan.routes, sent, strict=True):
            reports.append(
                AttemptReport(
                    route.intent.id,
                    result,
                    started,
                    finished,
                    ms,
                    connection=route.spec.key,
                    connection_cursor=cursor_after(
                        route.intent.contract, route.index, result.outcome
                    ),
                    suppress=_recipients_to_suppress(route.intent, result),
                    receipts_expected=result.outcome is Outcome.ACCEPTED
                    and receipts_expected(route.spec.config),
                )
            )
    for intent, _, error in plan.unroutable:  # our configuration: charged like any fault
        at = clock.now()
        result = GatewayResult(Outcome.EXECUTOR_ERROR, error=error[:RESULT_ERROR_CHARS])
        reports.append(AttemptReport(intent.id, result, at, at, 0))
    record_outcomes(lease_token=lease_token, reports=reports)
    _record_connection_health(plan, reports, now=now)
    return len(intents)


def _deferred_reports(plan: Plan) -> list[AttemptReport]:
    """Back to pending without an attempt, until the connection is expected back (never
    past the deadline: at the deadline the next claim expires it)."""
    reports = []
    for deferral in plan.deferrals:
        until = min(deferral.until, deferral.intent.deadline_at)
        decision = Decision(IntentStatus.PENDING, "", until)
        reports.append(
            AttemptReport(
                deferral.intent.id, None, outcome_without_attempt=decision, deferral=deferral
            )
        )
    return reports


def _record_connection_health(
    plan: Plan, reports: list[AttemptReport], *, now: dt.datetime
) -> None:
    """Feed each connection's circuit with what this batch saw; count deferrals."""
    by_key: dict[str, ConnectionOutcomes] = {}
    for route in plan.routes:
        if route.probe:
            by_key.setdefault(route.spec.key, ConnectionOutcomes()).probe = True
    for report in reports:
        if report.result is not None and report.connection:
            outcomes = by_key.setdefault(report.connection, ConnectionOutcomes())
            outcomes.add(report.result.outcome, report.result.error)
            metrics.CONNECTION_ATTEMPTS.labels(
                connection=report.connection, outcome=report.result.outcome.value
            ).inc()
    for deferral in plan.deferrals:
        outcomes = by_key.setdefault(deferral.connection, ConnectionOutcomes())
        if deferral.reason == THROTTLED:
            outcomes.throttle_waits += 1
        else:
            outcomes.circuit_deferrals += 1
        metrics.CONNECTION_DEFERRALS.labels(
            connection=deferral.connection, reason=deferral.reason
        ).inc()
    for key, outcomes in sorted(by_key.items()):  # sorted: workers lock rows in one order
        spec = plan.specs.get(key)
        if spec is not None:
            circuit_record(key=key, policy=spec.circuit, outcomes=outcomes, now=now)


def _apply(intent: Intent, decision: Decision, *, now: dt.datetime, message_id: str = "") -> None:
    if message_id:
        intent.gateway_message_id = message_id
    if decision.is_terminal:
        finish(intent, status=decision.status, reason_code=decision.reason_code, now=now)
    else:
        intent.status = decision.status
        intent.next_attempt_at = decision.next_attempt_at
        release_lease(intent, now=now)


# Outcomes after which nobody knows whether the message reached the recipient.
UNKNOWN_OUTCOMES = frozenset({AttemptOutcome.TIMEOUT, AttemptOutcome.LEASE_LOST})


def _decide(
    intent: Intent, outcome: str, now: dt.datetime, retry_after_s: float | None
) -> Decision:
    if intent.contract.get("delivery") == "at_most_once" and outcome in UNKNOWN_OUTCOMES:
        # It may have been delivered: a resend could deliver twice, which this target
        # forbids. Failed, with a dead letter an operator can judge.
        return Decision(IntentStatus.FAILED, ReasonCode.OUTCOME_UNKNOWN)
    return decide_after_attempt(
        outcome=outcome,
        attempts_made=intent.attempts_count,
        max_attempts=intent.max_attempts,
        cancel_requested=intent.cancel_requested,
        now=now,
        deadline_at=intent.deadline_at,
        policy=RetryPolicy.from_contract(intent.contract["retry"]),
        retry_after_s=retry_after_s,
    )


def _save(
    changed: list[Intent],
    attempts: list[Attempt],
    now: dt.datetime,
    deferred_ids: frozenset[int] = frozenset(),
) -> None:
    _write_states(changed)
    Attempt.objects.bulk_create(attempts, batch_size=100)
    dead = [
        i
        for i in changed
        if i.status in (IntentStatus.FAILED, IntentStatus.EXHAUSTED, IntentStatus.EXPIRED)
    ]
    if dead:
        intents_dead_lettered.send(sender=Intent, intents=dead, now=now)
    # Every terminal status reached here is a change (the batch held them in flight).
    changes = [(i, str(i.status)) for i in changed if i.status in TERMINAL_STATUSES]
    if changes:
        intents_changed.send(sender=Intent, changes=changes, now=now)
    if attempts:
        attempts_recorded.send(sender=Intent, attempts=attempts, now=now)
    transaction.on_commit(lambda: _count(changed, attempts, deferred_ids))


def _field_and_column(name: str) -> tuple[models.Field[Any, Any], str]:
    """Intent's field ``name`` and its column; it must be a concrete column."""
    field = Intent._meta.get_field(name)
    if not isinstance(field, models.Field) or not field.column:
        raise TypeError(f"Intent.{name} is not a column")
    return field, field.column


def _write_states(intents: list[Intent]) -> None:
    """Write each intent's ``RECORDED_FIELDS``: ``UPDATE … WHERE id = %s``, one per row.

    Only for rows this transaction holds locked (the caller selected them under its
    lease, or as expired leases), exactly like the ``bulk_update`` this replaces. Values
    go through each field's ``get_db_prep_save``, as the ORM's own UPDATE does, so the
    statement is the same on SQLite, PostgreSQL and SQL Server; each row binds 10
    parameters, far below SQL Server's 2,100.
    """
    if not intents:
        return
    meta = Intent._meta
    recorded = [_field_and_column(name) for name in RECORDED_FIELDS]
    fields = [field for field, _ in recorded]
    quote = connection.ops.quote_name
    # Only quoted identifiers from the model's metadata go into the text; values are bound.
    sql = "UPDATE {} SET {} WHERE {} = %s".format(  # noqa: S608
        quote(meta.db_table),
        ", ".join(f"{quote(column)} = %s" for _, column in recorded),
        quote(_field_and_column("id")[1]),
    )
    rows = [
        [field.get_db_prep_save(getattr(intent, field.attname), connection) for field in fields]
        + [intent.pk]
        for intent in intents
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _count(
    changed: list[Intent], attempts: list[Attempt], deferred_ids: frozenset[int] = frozenset()
) -> None:
    # Counted per label first: a metric's ``labels()`` lookup costs more than the count.
    gateway_of = {i.id: i.contract["gateway"] for i in changed}
    _count_attempts(attempts, gateway_of)
    _count_intents(changed, gateway_of, deferred_ids)


def _count_attempts(attempts: list[Attempt], gateway_of: dict[int, str]) -> None:
    """Attempts per gateway and outcome, and their durations (a lost lease has none)."""
    attempt_counts: Counter[tuple[str, str]] = Counter()
    durations: dict[str, list[float]] = {}
    for attempt in attempts:
        gateway = gateway_of.get(attempt.intent_id, "unknown")
        attempt_counts[gateway, attempt.outcome] += 1
        if attempt.outcome != AttemptOutcome.LEASE_LOST:
            durations.setdefault(gateway, []).append(attempt.duration_ms / 1000)
    for (gateway, outcome), count in attempt_counts.items():
        metrics.ATTEMPTS.labels(gateway=gateway, outcome=outcome).inc(count)
    _observe_each(metrics.ATTEMPT_DURATION, "gateway", durations)


def _count_intents(
    changed: list[Intent], gateway_of: dict[int, str], deferred_ids: frozenset[int]
) -> None:
    """Retries scheduled per gateway, intents finished per reason, acceptance latency."""
    retries: Counter[str] = Counter()
    finished: Counter[str] = Counter()
    latencies: dict[str, list[float]] = {}
    for intent in changed:
        if intent.id in deferred_ids:
            continue  # not an attempt: counted per connection as a deferral
        if intent.status == IntentStatus.PENDING:
            retries[gateway_of[intent.id]] += 1
        elif intent.finished_at is not None:
            finished[intent.reason_code] += 1
            if intent.status == IntentStatus.ACCEPTED:
                latency = (intent.finished_at - intent.created_at).total_seconds()
                latencies.setdefault(intent.target_key, []).append(latency)
    for gateway, count in retries.items():
        metrics.RETRIES_SCHEDULED.labels(gateway=gateway).inc(count)
    for reason, count in finished.items():
        metrics.INTENTS_FINISHED.labels(reason=reason).inc(count)
    _observe_each(metrics.ACCEPTANCE_LATENCY, "target", latencies)


def _observe_each(histogram: Any, label: str, values: dict[str, list[float]]) -> None:
    for key, observed in values.items():
        child = histogram.labels(**{label: key})
        for value in observed:
            child.observe(value)


def record_outcomes(*, lease_token: str, reports: list[AttemptReport]) -> None:
    """Write each attempt with its intent's new state, in one transaction."""
    with transaction.atomic():
        now = clock.db_now()
        locked = {
            i.id: i
            for i in Intent.objects.select_for_update()
            .filter(
                id__in=[r.intent_id for r in reports],
                lease_owner=lease_token,
                status=IntentStatus.IN_FLIGHT,
            )
            .only(*RECORDING_FIELDS)
        }
        changed, attempts = [], []
        deferred_ids = frozenset(r.intent_id for r in reports if r.deferral is not None)
        for report in reports:
            intent = locked.get(report.intent_id)
            if intent is None:  # the lease was reclaimed meanwhile: this answer is late
                lifecycle.late_result_ignored(report.intent_id)
                continue
            if report.result is None:
                if report.outcome_without_attempt is None:  # kept under python -O
                    raise RuntimeError(f"Intent {intent.pk}: no attempt and no outcome.")
                _apply(intent, report.outcome_without_attempt, now=now)
                changed.append(intent)
                lifecycle.recorded_on_commit(intent, outcome=None)
                continue
            result = report.result
            if report.started_at is None or report.finished_at is None:
                raise RuntimeError(f"Intent {intent.pk}: an attempt without its times.")
            intent.attempts_count += 1
            if report.connection:
                intent.connection = report.connection
            if report.connection_cursor is not None:
                intent.connection_cursor = report.connection_cursor
            decision = _decide(intent, result.outcome.value, now, result.retry_after_s)
            _apply(intent, decision, now=now, message_id=result.message_id)
            if intent.status == IntentStatus.ACCEPTED:
                intent.delivery_status = (
                    DeliveryStatus.SENT if report.receipts_expected else DeliveryStatus.UNKNOWN
                )
            changed.append(intent)
            lifecycle.recorded_on_commit(intent, outcome=result.outcome.value)
            attempts.append(
                _attempt_row(
                    intent,
                    report,
                    result,
                    started_at=report.started_at,
                    finished_at=report.finished_at,
                    lease_token=lease_token,
                )
            )
            _suppress_recipients(intent, report, result, now=now)  # in the attempt's transaction
        _save(changed, attempts, now, deferred_ids)


def _attempt_row(
    intent: Intent,
    report: AttemptReport,
    result: GatewayResult,
    *,
    started_at: dt.datetime,
    finished_at: dt.datetime,
    lease_token: str,
) -> Attempt:
    """The attempt's row, numbered after the intent's count (already incremented);
    ``started_at`` and ``finished_at`` are the report's, checked present."""
    return Attempt(
        intent_id=intent.id,
        number=intent.attempts_count,
        generation=intent.generation,
        started_at=started_at,
        finished_at=finished_at,
        duration_ms=report.duration_ms,
        outcome=result.outcome.value,
        gateway_status=result.status_code,
        gateway_message_id=result.message_id,
        error=result.error[:ATTEMPT_ERROR_CHARS],
        worker_id=lease_token,
        retry_after_s=result.retry_after_s,
        connection=report.connection,
    )


def _suppress_recipients(
    intent: Intent, report: AttemptReport, result: GatewayResult, *, now: dt.datetime
) -> None:
    """The recipients the provider refused for good, on the tenant's suppression list."""
    for recipient in report.suppress:
        suppression_add(
            tenant_id=intent.tenant_id,
            channel=intent.contract["gateway"],
            recipient=recipient,
            connection=report.connection,
            provider_code=result.provider_code,
            reason=result.error,
            intent_public_id=intent.public_id,
            now=now,
        )


def sweep_expired_leases(*, limit: int = 500) -> int:
    """Reclaim intents whose worker vanished: a ``lease_lost`` attempt, then the policy."""
    with transaction.atomic():
        now = clock.db_now()
        intents = list(expired_leases(now=now, limit=limit))
        changed, attempts = [], []
        for intent in intents:
            owner = intent.lease_owner
            intent.attempts_count += 1
            decision = _decide(intent, AttemptOutcome.LEASE_LOST, now, None)
            _apply(intent, decision, now=now)
            changed.append(intent)
            lifecycle.recorded_on_commit(intent, outcome=AttemptOutcome.LEASE_LOST)
            attempts.append(
                Attempt(
                    intent_id=intent.id,
                    number=intent.attempts_count,
                    generation=intent.generation,
                    started_at=now,
                    finished_at=now,
                    duration_ms=0,
                    outcome=AttemptOutcome.LEASE_LOST,
                    error=f"lease of {owner} expired; the worker stopped mid-attempt",
                    worker_id=owner,
                    # Which connection it went out through died with the worker.
                )
            )
        if changed:
            _save(changed, attempts, now)
            transaction.on_commit(lambda: metrics.LEASES_RECLAIMED.inc(len(changed)))
    return len(intents)
