"""Structured logs: one JSON object per line, from structlog and from every stdlib logger.

``settings.LOGGING`` installs ``StructuredFormatter`` on the console handler, so Django's,
django-q2's and httpx's records come out in the same shape as our own events.
``ObservabilityConfig.ready`` calls ``configure_structlog`` so ``get_logger`` loggers
hand their events to that same handler. Every line carries the correlation id of the
work in hand (the HTTP request's id, or the intent's correlation id inside
``bind_correlation``), and secret-looking keys are blanked at any depth before rendering.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from portal.redaction import (
    NOT_SECRET_KEYS,
    REDACTED,
    SECRET_KEY_PATTERN,
    is_sensitive_key,
    redact,
)

from .context import request_id_var, sensitive_fields_var


def _configured_sensitive_fields() -> frozenset[str]:
    from django.conf import settings

    if not settings.configured:
        return frozenset()
    return frozenset(name.lower() for name in getattr(settings, "LOG_REDACT_FIELDS", ()))


def redact_event(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: blank secrets, configured fields and the contract's sensitive
    payload fields (bound by ``bind_correlation``) before the line is rendered."""
    extra = _configured_sensitive_fields() | sensitive_fields_var.get()
    redacted: EventDict = redact(event_dict, extra)
    return redacted


def add_correlation_id(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    correlation_id = request_id_var.get()
    if correlation_id:
        event_dict.setdefault("correlation_id", correlation_id)
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        add_correlation_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


class StructuredFormatter(structlog.stdlib.ProcessorFormatter):
    """The stdlib formatter named in ``settings.LOGGING``: JSON or a readable console line."""

    def __init__(self, json: bool | None = None) -> None:
        if json is None:
            from django.conf import settings

            json = bool(getattr(settings, "LOG_JSON", True)) if settings.configured else True
        renderer: Processor = (
            structlog.processors.JSONRenderer(sort_keys=False)
            if json
            else structlog.dev.ConsoleRenderer(colors=False)
        )
        super().__init__(
            foreign_pre_chain=[*_shared_processors(), structlog.stdlib.ExtraAdder()],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                # Tracebacks become text here so the redaction sees them too.
                structlog.processors.format_exc_info,
                redact_event,
                renderer,
            ],
        )


def configure_structlog() -> None:
    """Route structlog events through stdlib logging (and so through the formatter)."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structured logger: ``get_logger(__name__).info("intent.claimed", intent_id=...)``."""
    return structlog.stdlib.get_logger(name)


@contextmanager
def bind_correlation(
    correlation_id: str, *, sensitive_fields: Iterable[str] = (), **fields: Any
) -> Iterator[None]:
    """Within the block, every log line (ours and stdlib's) carries ``correlation_id`` and
    ``fields``, and the payload fields named in ``sensitive_fields`` are blanked.

    The id also becomes ``current_request_id()``, so audit events written inside the
    block point at the same trail. An empty ``correlation_id`` keeps the current one.
    Context variables are per thread and per asyncio task: bind inside the coroutine that
    handles one intent, not around an ``asyncio.gather`` of many.
    """
    id_token = request_id_var.set(correlation_id) if correlation_id else None
    names = frozenset(str(name).lower() for name in sensitive_fields)
    fields_token = sensitive_fields_var.set(sensitive_fields_var.get() | names)
    try:
        with structlog.contextvars.bound_contextvars(**fields):
            yield
    finally:
        sensitive_fields_var.reset(fields_token)
        if id_token is not None:
            request_id_var.reset(id_token)


__all__ = [
    "NOT_SECRET_KEYS",
    "REDACTED",
    "SECRET_KEY_PATTERN",
    "StructuredFormatter",
    "bind_correlation",
    "configure_structlog",
    "get_logger",
    "is_sensitive_key",
    "redact",
]
