"""OpenTelemetry traces, on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (CONTRACT.md v1.1).

Spans: the API request (opentelemetry-instrumentation-django, continuing a client's W3C
``traceparent``), each claim, each attempt and each provider call; HTTP providers get a
``traceparent`` of their own call (opentelemetry-instrumentation-httpx). An intent keeps
the ``traceparent`` of the request that created it, so the claim and every attempt,
hours later and in other processes, carry a span link back to that request: one intent's
whole path is found from its request's trace, and each attempt's own trace holds the
provider calls.

With the variable unset nothing is configured: the API's no-op tracer remains, whose
spans cost a function call. Exporter settings (``OTEL_EXPORTER_OTLP_HEADERS``,
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``OTEL_BSP_*``, ``OTEL_SERVICE_NAME``) are the
SDK's own environment variables.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

TRACER_NAME = "submission-portal"
DEFAULT_SERVICE_NAME = "submission-portal"
# Probes and scrapes would be most of the traces and tell nothing.
UNTRACED_URLS = "healthz,readyz,metrics,static/"

tracer = trace.get_tracer(TRACER_NAME)
_configured = False


def tracing_configure() -> bool:
    """Install the SDK, the OTLP/HTTP exporter and the Django and httpx instrumentation."""
    global _configured
    if _configured or not getattr(settings, "OTEL_EXPORTER_OTLP_ENDPOINT", ""):
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME,
            "process.command": _process_role(),
        }
    )
    provider = TracerProvider(resource=resource)
    # The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT itself and posts to <it>/v1/traces.
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    DjangoInstrumentor().instrument(excluded_urls=UNTRACED_URLS)
    HTTPXClientInstrumentor().instrument()
    _configured = True
    return True


def _process_role() -> str:
    """``runserver``/``qcluster``/``run_dispatcher``/``gunicorn``: which part of the stack."""
    argv = sys.argv
    if len(argv) > 1 and argv[0].endswith("manage.py"):
        return argv[1]
    return os.path.basename(argv[0]) if argv else ""


def current_traceparent() -> str:
    """The W3C ``traceparent`` of the active span ('' when there is none to keep)."""
    if not trace.get_current_span().get_span_context().is_valid:
        return ""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent", "")


def link_to(traceparent: str) -> Link | None:
    """A span link to the span a stored ``traceparent`` names (None when it names none)."""
    if not traceparent:
        return None
    context = trace.get_current_span(propagate.extract({"traceparent": traceparent}))
    span_context = context.get_span_context()
    return Link(span_context) if span_context.is_valid else None


def _links(traceparents: Iterable[str]) -> list[Link]:
    return [link for value in traceparents if (link := link_to(value)) is not None]


def claim_recorded(intents: list[Any], *, started_ns: int) -> None:
    """A span for one claim that leased ``intents``, linked to each one's request.

    Made after the fact, and only for a claim that found work: the dispatcher polls many
    times a second, and empty claims would be most of the traces.
    """
    if not tracer_is_recording():
        return
    span = tracer.start_span(
        "intent.claim",
        kind=SpanKind.INTERNAL,
        start_time=started_ns,
        links=_links(getattr(i, "traceparent", "") for i in intents),
        attributes={"portal.batch_size": len(intents)},
    )
    span.end()


def tracer_is_recording() -> bool:
    return _configured


@contextmanager
def attempt_span(intent: Any, *, gateway: str, number: int) -> Iterator[Span]:
    """One attempt of ``intent``: a new trace linked to the request that created it."""
    links = _links([getattr(intent, "traceparent", "")])
    with tracer.start_as_current_span(
        "intent.attempt",
        kind=SpanKind.INTERNAL,
        links=links,
        attributes={
            "portal.intent_id": str(intent.public_id),
            "portal.target": intent.target_key,
            "portal.gateway": gateway,
            "portal.attempt": number,
        },
    ) as span:
        yield span


def attempt_finished(span: Span, result: Any) -> None:
    if result is None or not span.is_recording():
        return
    span.set_attribute("portal.outcome", str(result.outcome))
    if result.status_code is not None:
        span.set_attribute("portal.gateway_status", int(result.status_code))
    if str(result.outcome) != "accepted":
        span.set_status(Status(StatusCode.ERROR, str(result.outcome)))


@contextmanager
def provider_call_span(*, connection: str, provider: str) -> Iterator[Span]:
    """One provider call (a CLIENT span; httpx adds its HTTP span and ``traceparent`` inside)."""
    with tracer.start_as_current_span(
        f"provider {provider}",
        kind=SpanKind.CLIENT,
        attributes={"portal.connection": connection, "portal.provider": provider},
    ) as span:
        yield span
