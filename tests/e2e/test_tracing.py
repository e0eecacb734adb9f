"""Traces end to end: a real OTLP/HTTP receiver, the whole stack as real processes.

The receiver decodes what the processes export with the OpenTelemetry protobuf
definitions (``opentelemetry-proto``), not with our code, so the test sees exactly what a
collector would.
"""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.e2e.conftest import wait_for

pytestmark = pytest.mark.e2e

CLIENT_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN_ID = "00f067aa0ba902b7"


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP trace endpoint keeping every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[dict] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _CollectorHandler)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def named(self, name: str) -> list[dict]:
        with self.lock:
            return [s for s in self.spans if s["name"] == name]


class _CollectorHandler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest.FromString(body)
        spans = []
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        {
                            "name": span.name,
                            "kind": span.kind,
                            "trace_id": span.trace_id.hex(),
                            "span_id": span.span_id.hex(),
                            "parent_span_id": span.parent_span_id.hex(),
                            "links": [(ln.trace_id.hex(), ln.span_id.hex()) for ln in span.links],
                            "attributes": {a.key: a.value for a in span.attributes},
                            "resource": resource,
                        }
                    )
        with self.server.lock:
            self.server.spans.extend(spans)
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector():
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_one_intent_is_traced_from_the_request_through_claim_attempt_and_provider_call(
    stack, collector
):
    stack.env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",  # export within 0.1 s instead of 5 s
        OTEL_SERVICE_NAME="portal-e2e",
    )
    stack.start_simulator()
    stack.start_web()
    stack.start_workers()
    stack.start_dispatcher()
    with stack.api() as client:
        response = client.post(
            "/intents",
            json={"target": "sms.e2e", "payload": {"to": "+15550100001", "text": "hi"}},
            headers={
                "Idempotency-Key": "traced-1",
                "traceparent": f"00-{CLIENT_TRACE_ID}-{CLIENT_SPAN_ID}-01",
            },
        )
    assert response.status_code == 201, response.text
    intent = stack.wait_terminal(response.json()["id"])
    assert intent["status"] == "accepted"

    # The API request continues the client's trace.
    request_span = wait_for(
        lambda: next(
            (s for s in collector.named("POST api/v1/intents") if s["trace_id"] == CLIENT_TRACE_ID),
            None,
        ),
        timeout=30,
        what="the API request's span",
    )
    assert request_span["parent_span_id"] == CLIENT_SPAN_ID
    assert request_span["resource"]["service.name"] == "portal-e2e"
    request_link = (CLIENT_TRACE_ID, request_span["span_id"])

    # The claim (dispatcher) and the attempt (a cluster worker) link back to the request.
    claim = wait_for(
        lambda: next(
            (s for s in collector.named("intent.claim") if request_link in s["links"]), None
        ),
        timeout=30,
        what="the claim's span",
    )
    assert claim["attributes"]["portal.batch_size"].int_value >= 1
    attempt = wait_for(
        lambda: next(
            (s for s in collector.named("intent.attempt") if request_link in s["links"]), None
        ),
        timeout=30,
        what="the attempt's span",
    )
    assert attempt["attributes"]["portal.intent_id"].string_value == intent["id"]
    assert attempt["attributes"]["portal.outcome"].string_value == "accepted"

    # The provider call is a child of the attempt, its HTTP request a child of the call,
    # and the provider received that HTTP span's traceparent.
    call = wait_for(
        lambda: next(
            (s for s in collector.named("provider simulator")
             if s["parent_span_id"] == attempt["span_id"]),
            None,
        ),
        timeout=30,
        what="the provider call's span",
    )  # fmt: skip
    assert call["attributes"]["portal.connection"].string_value == "simulator-sms"
    http_span = wait_for(
        lambda: next(
            (s for s in collector.named("POST") if s["parent_span_id"] == call["span_id"]), None
        ),
        timeout=30,
        what="the provider HTTP request's span",
    )
    [message] = [m for m in stack.gateway_messages() if m["idempotency_key"] == intent["id"]]
    # version 00, then trace id and parent id; the flags say sampled (and random trace id)
    assert message["traceparent"].startswith(f"00-{attempt['trace_id']}-{http_span['span_id']}-")


def test_without_an_endpoint_nothing_is_exported_and_no_traceparent_is_sent(stack, collector):
    stack.start_simulator()
    stack.start_web()
    stack.start_workers()
    stack.start_dispatcher()
    created = stack.submit("+15550100001", key="untraced-1")
    assert stack.wait_terminal(created["id"])["status"] == "accepted"
    [message] = [m for m in stack.gateway_messages() if m["idempotency_key"] == created["id"]]
    assert message["traceparent"] == ""
    assert collector.spans == []
    assert httpx.get(f"{stack.web}/healthz").status_code == 200
