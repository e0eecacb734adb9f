"""One target per channel through a real provider peer, across real processes.

The stack (gunicorn, dispatcher, django-q2 cluster) delivers through connection files:
``smtp`` to an aiosmtpd server, ``webhook`` to a local receiver whose requests the
``standardwebhooks`` package verifies, ``sns`` to moto in server mode. The peers run in
this test process; the stack reaches them over loopback, as it would a provider.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from standardwebhooks import Webhook

from .conftest import TARGETS, free_port

pytestmark = pytest.mark.e2e

WEBHOOK_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
QUICK = """
attempt_timeout_s = 3
acceptance_deadline_s = 120
[retry]
strategy = "fixed"
initial_delay_s = 0.3
multiplier = 1.0
max_delay_s = 2
max_attempts = 4
"""


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []
    arrivals: list[float] = []

    def do_POST(self) -> None:
        type(self).arrivals.append(time.monotonic())
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture
def peers(tmp_path: Path):
    from moto.server import ThreadedMotoServer

    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    Receiver.received, Receiver.arrivals = [], []
    hook = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    try:
        yield {
            "mailbox": mailbox,
            "smtp_port": smtp.port,
            "hook_url": f"http://127.0.0.1:{hook.server_address[1]}/in",
            "moto_url": f"http://127.0.0.1:{moto_port}",
        }
    finally:
        smtp.stop()
        hook.shutdown()
        moto.stop()


def write_registry(tmp_path: Path, peers: dict) -> tuple[Path, Path]:
    targets = tmp_path / "targets"
    shutil.copytree(TARGETS, targets)
    connections = tmp_path / "connections"
    connections.mkdir()
    (connections / "smtp.toml").write_text(
        f"""
key = "smtp-e2e"
provider = "smtp"
channel = "email"
[settings]
host = "127.0.0.1"
port = {peers["smtp_port"]}
security = "none"
from = "Portal <noreply@portal.example>"
"""
    )
    (connections / "hook.toml").write_text(
        f"""
key = "hook-e2e"
provider = "webhook"
channel = "http"
[settings]
url = "{peers["hook_url"]}"
[settings.headers]
X-Tenant = "e2e"
[secrets]
signing_secret = "env:E2E_WEBHOOK_SECRET"
"""
    )
    (connections / "sns.toml").write_text(
        f"""
key = "sns-e2e"
provider = "sns"
channel = "sms"
[settings]
region = "us-east-1"
endpoint_url = "{peers["moto_url"]}"
[secrets]
access_key_id = "env:E2E_AWS_KEY"
secret_access_key = "env:E2E_AWS_SECRET"
"""
    )
    for key, gateway, connection, required in [
        ("email.e2e", "email", "smtp-e2e", '["to", "subject", "text"]'),
        ("http.e2e", "http", "hook-e2e", '["order"]'),
        ("sms.sns", "sms", "sns-e2e", '["to", "text"]'),
    ]:
        (targets / f"{key.replace('.', '_')}.toml").write_text(
            f'key = "{key}"\nversion = "1.0"\ngateway = "{gateway}"\n'
            f'connections = ["{connection}"]\n{QUICK}\n'
            f'[schema]\ntype = "object"\nrequired = {required}\n'
        )
    return targets, connections


def submit(stack, target: str, payload: dict) -> dict:
    with stack.api() as client:
        response = client.post(
            "/intents",
            json={"target": target, "payload": payload},
            headers={"Idempotency-Key": f"{target}-1"},
        )
    assert response.status_code == 201, response.text
    return response.json()


def test_one_target_per_channel_through_real_provider_peers(stack, peers, tmp_path):
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns import sns_backends

    targets, connections = write_registry(tmp_path, peers)
    stack.manage("sync_targets", "--dir", str(targets), "--connections-dir", str(connections))
    # Secrets reach the workers as the environment variables the references name.
    stack.env.update(
        E2E_WEBHOOK_SECRET=WEBHOOK_SECRET, E2E_AWS_KEY="testing", E2E_AWS_SECRET="testing"
    )
    stack.start_web()
    stack.start_workers()
    stack.start_dispatcher()

    mail = submit(stack, "email.e2e", {"to": "ada@example.com", "subject": "Hi", "text": "Body"})
    hook = submit(stack, "http.e2e", {"order": 42})
    sms = submit(stack, "sms.sns", {"to": "+15550100001", "text": "code 123456"})
    for intent, connection in [(mail, "smtp-e2e"), (hook, "hook-e2e"), (sms, "sns-e2e")]:
        done = stack.wait_terminal(intent["id"])
        assert (done["status"], done["connection"]) == ("accepted", connection), done

    [(sender, recipients, content)] = peers["mailbox"].messages
    message = message_from_bytes(content)
    assert recipients == ["ada@example.com"] and "noreply@portal.example" in sender
    assert message["Subject"] == "Hi" and "Body" in message.get_payload(decode=False)

    [(headers, body)] = Receiver.received
    assert json.loads(body) == {"order": 42} and headers["x-tenant"] == "e2e"
    assert headers["webhook-id"]
    Webhook(WEBHOOK_SECRET).verify(body, headers)  # raises on a bad signature

    stored = sns_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sms_messages
    assert list(stored.values()) == [("+15550100001", "code 123456")]


def test_a_connection_rate_holds_across_two_worker_clusters(stack, peers, tmp_path):
    """rate_per_second = 5 on the webhook connection, two django-q2 clusters of two worker
    processes each: the receiver sees at most the bucket (5) plus 5 per second."""
    targets, connections = write_registry(tmp_path, peers)
    hook_file = connections / "hook.toml"
    hook_file.write_text(
        hook_file.read_text().replace("[settings]", "rate_per_second = 5\n[settings]", 1)
    )
    stack.manage("sync_targets", "--dir", str(targets), "--connections-dir", str(connections))
    stack.env.update(E2E_WEBHOOK_SECRET=WEBHOOK_SECRET)
    stack.start_web()
    stack.start_workers("workers-a")
    stack.start_workers("workers-b")
    stack.start_dispatcher()

    intents = []
    with stack.api() as client:
        for n in range(25):
            response = client.post(
                "/intents",
                json={"target": "http.e2e", "payload": {"order": n}},
                headers={"Idempotency-Key": f"rate-{n}"},
            )
            assert response.status_code == 201, response.text
            intents.append(response.json())
    for intent in intents:
        done = stack.wait_terminal(intent["id"], timeout=90)
        assert done["status"] == "accepted" and done["attempts"] == 1, done  # waits not charged

    arrivals = sorted(Receiver.arrivals)
    assert len(arrivals) == 25
    # 25 calls at 5/s from a full bucket of 5: (25 - 5) / 5 = 4 s from the first grant to
    # the last, less the first call's delivery delay (without the throttle: well under 1 s).
    assert arrivals[-1] - arrivals[0] >= 3.5, arrivals
    # Any 2 s of arrivals: at most the bucket plus 5/s over 2 s and 1 s of delivery jitter.
    for start in arrivals:
        assert sum(start <= t < start + 2 for t in arrivals) <= 5 + 5 * 3, arrivals
    calls = {
        name: (tmp_path / f"{name}.log").read_text(errors="replace").count("attempt.finished")
        for name in ("workers-a", "workers-b")
    }
    assert sum(calls.values()) == 25 and all(calls.values()), calls  # both clusters sent
