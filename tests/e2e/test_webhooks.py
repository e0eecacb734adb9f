"""Client webhooks through real processes: the simulator accepts an SMS and posts a
signed receipt back to the web server, the intent becomes ``delivered``, and the
workers deliver ``intent.accepted`` and ``intent.delivered`` to a real receiver that
verifies each with the ``standardwebhooks`` package."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook

from tests.e2e.conftest import PY, wait_for

pytestmark = pytest.mark.e2e

RECEIPT_SECRET = "whsec_" + base64.b64encode(b"e2e-receipts-" + b"k" * 19).decode()
PORTS = range(8300, 8350)  # this suite's share of the machine's ports


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def receiver_server() -> ThreadingHTTPServer:
    for port in PORTS:
        try:
            return ThreadingHTTPServer(("127.0.0.1", port), Receiver)
        except OSError:
            continue
    raise RuntimeError("no free port in 8300-8349")


def test_a_delivered_receipt_reaches_the_clients_endpoint_signed(stack):
    Receiver.received = []
    server = receiver_server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stack.env.update(
        GATEWAY_SIMULATOR_RECEIPT_SECRET=RECEIPT_SECRET, WEBHOOK_ALLOWED_CIDRS="127.0.0.0/8"
    )
    try:
        stack.start(
            "simulator",
            PY, "manage.py", "run_gateway_simulator", "--port", str(stack.sim_port),
            "--receipts-url", f"{stack.web}/hooks/receipts/{{connection}}",
            "--receipt-delay-ms", "100",
        )  # fmt: skip
        wait_for(lambda: stack._answers(f"{stack.sim}/messages"), timeout=20, what="the simulator")
        stack.start_web()
        stack.start_workers()
        stack.start_dispatcher()
        with stack.api() as client:
            created = client.post(
                "/webhook-endpoints",
                json={
                    "url": f"http://127.0.0.1:{server.server_address[1]}/hooks",
                    "event_types": ["intent.accepted", "intent.delivered"],
                },
            )
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        intent = stack.submit("+15550100001")
        wait_for(lambda: len(Receiver.received) >= 2, timeout=60, what="two events")
        hook = Webhook(secret)
        events = [hook.verify(body, headers) for headers, body in Receiver.received]
        assert sorted(e["type"] for e in events) == ["intent.accepted", "intent.delivered"]
        delivered = next(e for e in events if e["type"] == "intent.delivered")
        assert delivered["data"]["id"] == intent["id"]
        assert delivered["data"]["delivery_status"] == "delivered"
        with stack.api() as client:
            deliveries = client.get(f"/webhook-endpoints/{created.json()['id']}/deliveries")
        assert {d["status"] for d in deliveries.json()["results"]} == {"delivered"}
        ids = {headers["webhook-id"] for headers, _ in Receiver.received}
        assert ids == {d["event_id"] for d in deliveries.json()["results"]}
        # The client's own list shows its intent only, not the deliveries.
        with stack.api() as client:
            listed = client.get("/intents").json()["results"]
        assert [i["id"] for i in listed] == [intent["id"]]
        assert json.loads(Receiver.received[0][1])["data"]["id"] == intent["id"]
    finally:
        server.shutdown()
        server.server_close()
