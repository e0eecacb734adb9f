"""One log line per step of an intent's life, each carrying the intent's correlation id.

The engine calls these at each step; they hold no logic of their own beyond choosing
the event name and fields, so the engine's modules stay about delivery. Events:

``intent.submitted`` → ``intent.claimed`` → ``attempt.started`` → ``attempt.finished``
→ ``intent.retry_scheduled`` (and round again) or ``intent.finished`` (terminal).

The correlation id is the HTTP request's id the intent was created with (the client's
``X-Request-ID`` or W3C trace id), else the intent's public id; it is also the
``X-Request-ID`` header of every gateway call. Payloads are never logged, and while an
attempt runs the contract's ``sensitive_fields`` are blanked in any line that names them.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from django.db import transaction

from . import tracing
from .logging import bind_correlation, get_logger

LOGGER_NAME = "portal.lifecycle"
logger = get_logger(LOGGER_NAME)


def _enabled() -> bool:
    """Whether lifecycle lines are wanted at all (a benchmark runs at WARNING): the hot
    path then skips building them, binding context and registering commit callbacks."""
    return logging.getLogger(LOGGER_NAME).isEnabledFor(logging.INFO)


def correlation_id_of(intent: Any) -> str:
    """What every line about ``intent`` (and its gateway calls) is correlated by."""
    return intent.correlation_id or str(intent.public_id)


def _sensitive_fields(intent: Any) -> list[str]:
    contract = getattr(intent, "contract", None) or {}
    return list(contract.get("sensitive_fields", ()))


@contextmanager
def intent_context(intent: Any) -> Iterator[None]:
    """Bind the intent's correlation id, public id and sensitive fields for a block."""
    with bind_correlation(
        correlation_id_of(intent),
        sensitive_fields=_sensitive_fields(intent),
        intent_id=str(intent.public_id),
    ):
        yield


def submitted(intent: Any) -> None:
    if not _enabled():
        return
    with intent_context(intent):
        logger.info(
            "intent.submitted",
            tenant_id=intent.tenant_id,
            target=intent.target_key,
            contract_version=intent.contract_version,
            idempotency_key=intent.idempotency_key,
            payload_sha256=intent.payload_sha256,
            deadline_at=intent.deadline_at.isoformat() if intent.deadline_at else None,
        )


def claimed(intents: Iterable[Any], *, lease_token: str, now: Any) -> None:
    if not _enabled():
        return
    for intent in intents:
        with bind_correlation(correlation_id_of(intent), intent_id=str(intent.public_id)):
            lag = (now - intent.next_attempt_at).total_seconds() if intent.next_attempt_at else 0
            logger.info("intent.claimed", lease=lease_token, dispatch_lag_s=round(lag, 3))


@dataclasses.dataclass
class AttemptLog:
    """Filled in by the caller with the gateway's result before the block ends."""

    result: Any = None


@contextmanager
def attempt(intent: Any, *, gateway: str, timeout_s: float) -> Iterator[AttemptLog]:
    """Around one gateway call: ``attempt.started`` before, ``attempt.finished`` after.

    Everything logged inside (httpx included) carries the intent's correlation id, also
    when the lifecycle lines themselves are off: then only they are skipped.
    """
    record = AttemptLog()
    number = intent.attempts_count + 1
    with (
        intent_context(intent),
        tracing.attempt_span(intent, gateway=gateway, number=number) as span,
    ):
        if not _enabled():
            yield record
            tracing.attempt_finished(span, record.result)
            return
        logger.info(
            "attempt.started", attempt=number, gateway=gateway, timeout_s=round(timeout_s, 3)
        )
        started = time.perf_counter()
        yield record
        result = record.result
        tracing.attempt_finished(span, result)
        fields: dict[str, Any] = {
            "attempt": number,
            "gateway": gateway,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        }
        if result is not None:
            fields.update(
                outcome=str(result.outcome),
                gateway_status=result.status_code,
                gateway_message_id=result.message_id or None,
                retry_after_s=result.retry_after_s,
                error=result.error or None,
            )
        logger.info("attempt.finished", **fields)


def recorded(intent: Any, *, outcome: str | None) -> None:
    """After the engine applied a decision to ``intent``: its next state, one line.

    ``outcome`` is the attempt's outcome, or None when no attempt was made (the deadline
    passed, or a cancel request was honoured before sending).
    """
    with intent_context(intent):
        if intent.finished_at is not None:
            logger.info(
                "intent.finished",
                status=intent.status,
                reason_code=intent.reason_code,
                attempts=intent.attempts_count,
                last_outcome=outcome,
                gateway_message_id=intent.gateway_message_id or None,
            )
        else:
            logger.info(
                "intent.retry_scheduled",
                status=intent.status,
                attempts=intent.attempts_count,
                last_outcome=outcome,
                next_attempt_at=(
                    intent.next_attempt_at.isoformat() if intent.next_attempt_at else None
                ),
            )


def recorded_on_commit(intent: Any, *, outcome: str | None) -> None:
    """``recorded``, once the transaction that wrote the new state commits: the log never
    shows a state that was rolled back."""
    if _enabled():
        transaction.on_commit(partial(recorded, intent, outcome=outcome))


def cancel_recorded(intent: Any) -> None:
    """After a client's cancel: terminal at once, or noted until the running attempt ends."""
    if intent.finished_at is not None:
        recorded(intent, outcome=None)
        return
    with intent_context(intent):
        logger.info("intent.cancel_requested", status=intent.status)


def late_result_ignored(intent_id: int) -> None:
    logger.warning("attempt.late_result_ignored", intent_pk=intent_id)
