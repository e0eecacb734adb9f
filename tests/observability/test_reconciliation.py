"""Reconciliation: intents whose last attempt timed out are listed; a gateway that can be
asked by idempotency key settles them; the others stay listed for an operator."""

from __future__ import annotations

import json
import threading
from io import StringIO

import pytest
from django.core.management import call_command

from deadletters.models import DeadLetter
from gateways.base import GatewayMessage, GatewayResult, Outcome
from gateways.simulator import SimulatorServer, start_simulator_in_thread
from intents.dispatch import run_once
from intents.models import Intent
from portal.audit.models import AuditEvent
from portal.observability import reconciliation, tasks
from tests.engine import scripted_gateway

QUERYABLE = "tests.observability.test_reconciliation.QueryableGateway"
SCRIPTED = "tests.engine.scripted_gateway.ScriptedGateway"
SMS_ADAPTER = "gateways.adapters.sms.SmsGateway"


class QueryableGateway:
    """A provider that honours idempotency keys and can be asked about one.

    ``…70504``: the provider accepts the message but its answer never arrives (a timeout
    for us). ``…00504``: the request never reaches it (a timeout, and no record).
    ``…00503``: unavailable. Anything else is accepted at once.
    """

    name = "queryable"
    accepted: dict[str, str] = {}
    queried: list[str] = []
    _lock = threading.Lock()

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    @classmethod
    def reset(cls) -> None:
        cls.accepted.clear()
        cls.queried.clear()

    async def send(self, message: GatewayMessage, *, timeout_s: float) -> GatewayResult:
        to = str(message.payload.get("to", ""))
        if to.endswith("00504"):
            return GatewayResult(Outcome.TIMEOUT, error=f"no answer within {timeout_s:g} s")
        if to.endswith("00503"):
            return GatewayResult(Outcome.REJECTED_TRANSIENT, 503, error="HTTP 503")
        with self._lock:
            message_id = self.accepted.setdefault(message.idempotency_key, f"prov-{to[-5:]}")
        if to.endswith("70504"):
            return GatewayResult(Outcome.TIMEOUT, error=f"no answer within {timeout_s:g} s")
        return GatewayResult(Outcome.ACCEPTED, 202, message_id=message_id)

    async def query_status(
        self, idempotency_key: str, *, timeout_s: float, request_id: str = ""
    ) -> GatewayResult | None:
        assert timeout_s > 0 and request_id
        with self._lock:
            self.queried.append(idempotency_key)
            message_id = self.accepted.get(idempotency_key)
        if message_id is None:
            return None
        return GatewayResult(Outcome.ACCEPTED, 200, message_id=message_id)

    async def aclose(self) -> None:
        pass


@pytest.fixture
def gateways(settings):
    settings.GATEWAY_ADAPTERS = {"sms": QUERYABLE, "push": SCRIPTED, "http": SCRIPTED}
    QueryableGateway.reset()
    scripted_gateway.reset()
    yield
    QueryableGateway.reset()


@pytest.fixture
def submit(tenant, targets):
    from intents.services import intent_submit

    counter = iter(range(1, 1000))

    def _submit(to="+15550100001", *, target="sms.fast", payload=None):
        return intent_submit(
            tenant=tenant,
            idempotency_key=f"reconcile-{next(counter)}",
            target_key=target,
            contract_version=None,
            payload=payload or {"to": to, "text": "hello"},
        ).intent

    return _submit


@pytest.fixture
def timed_out(gateways, submit, frozen_clock, django_capture_on_commit_callbacks):
    """Run the engine until the sms intents are dead-lettered after three timeouts."""
    intents = {
        "lost_answer": submit("+15550170504"),  # the provider has it
        "never_arrived": submit("+15550100504"),  # the provider does not
        "push_timeout": submit(
            target="push.alert", payload={"token": "device-00504", "title": "hi"}
        ),
        "transient": submit("+15550100503"),  # last attempt a 503, not a timeout
        "delivered": submit("+15550100001"),
    }
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            run_once()
        frozen_clock.advance(1.5)
    for intent in intents.values():
        intent.refresh_from_db()
    assert intents["lost_answer"].status == "exhausted"
    assert intents["never_arrived"].status == "exhausted"
    assert intents["push_timeout"].status == "pending"  # eight attempts, still retrying
    assert intents["transient"].status == "exhausted"
    assert intents["delivered"].status == "accepted"
    return intents


def reconcile(*args: str) -> str:
    out = StringIO()
    call_command("reconcile", *args, stdout=out)
    return out.getvalue()


def line_of(out: str, intent: Intent) -> str:
    (line,) = [line for line in out.splitlines() if line.startswith(str(intent.public_id))]
    return line


def test_listing_names_every_timed_out_intent_and_what_can_be_done(timed_out):
    out = reconcile()
    listed = {line.split()[0] for line in out.splitlines() if " via " in line}
    assert listed == {
        str(timed_out[name].public_id) for name in ("lost_answer", "never_arrived", "push_timeout")
    }
    assert "queryable: the gateway can be asked" in line_of(out, timed_out["lost_answer"])
    assert "[exhausted]" in line_of(out, timed_out["lost_answer"])
    push = line_of(out, timed_out["push_timeout"])
    assert "via push [pending]" in push
    assert "manual_review: the 'push' adapter (ScriptedGateway) cannot query status" in push
    assert "1 manual_review, 2 queryable" in out
    assert QueryableGateway.queried == []  # listing asks no one
    assert Intent.objects.get(pk=timed_out["lost_answer"].pk).status == "exhausted"


def test_resolve_records_what_the_gateway_confirms(timed_out):
    audit_before = AuditEvent.objects.count()
    out = reconcile("--resolve")
    lost = timed_out["lost_answer"]
    assert "resolved: the gateway confirmed acceptance; was exhausted, 1 dead letter(s)" in (
        line_of(out, lost)
    )
    assert "unconfirmed: the gateway has no record of it" in line_of(
        out, timed_out["never_arrived"]
    )
    assert "manual_review" in line_of(out, timed_out["push_timeout"])
    assert sorted(QueryableGateway.queried) == sorted(
        [str(lost.public_id), str(timed_out["never_arrived"].public_id)]
    )

    lost.refresh_from_db()
    assert (lost.status, lost.reason_code, lost.gateway_message_id) == (
        "accepted",
        "gateway_accepted",
        "prov-70504",
    )
    assert DeadLetter.objects.get(intent=lost).status == "resolved"
    never = Intent.objects.get(pk=timed_out["never_arrived"].pk)
    assert never.status == "exhausted"
    assert DeadLetter.objects.get(intent=never).status == "open"
    events = list(AuditEvent.objects.order_by("sequence")[audit_before:])
    dead_letter = DeadLetter.objects.get(intent=lost)
    assert [(e.action, e.object_id, e.actor_label) for e in events] == [
        ("dead_letter.resolved", str(dead_letter.public_id), "reconcile"),
        ("intent.reconciled", str(lost.public_id), "reconcile"),
    ]
    assert events[0].data["intent"] == str(lost.public_id)
    assert "reconcile" in events[0].data["reason"]
    assert events[1].data["previous_status"] == "exhausted"
    assert events[1].data["dead_letters_resolved"] == 1

    # The settled intent is no longer listed; the others still are.
    again = reconcile("--resolve")
    assert str(lost.public_id) not in again
    assert str(never.public_id) in again
    assert str(timed_out["push_timeout"].public_id) in again


def test_the_scheduled_task_resolves_automatically(timed_out):
    tally = tasks.reconcile_timeouts_task()
    assert tally == {"resolved": 1, "unconfirmed": 1, "manual_review": 1}
    assert Intent.objects.get(pk=timed_out["lost_answer"].pk).status == "accepted"
    assert tasks.reconcile_timeouts_task() == {"unconfirmed": 1, "manual_review": 1}


def test_a_pending_intent_confirmed_by_the_gateway_stops_retrying(
    gateways, submit, frozen_clock, django_capture_on_commit_callbacks
):
    intent = submit("+15550170504")
    with django_capture_on_commit_callbacks(execute=True):
        run_once()
    intent.refresh_from_db()
    assert (intent.status, intent.attempts_count) == ("pending", 1)
    items = reconciliation.reconcile_timeouts(resolve=True)
    assert [(i.public_id, i.action) for i in items] == [(str(intent.public_id), "resolved")]
    intent.refresh_from_db()
    assert intent.status == "accepted"
    assert intent.next_attempt_at is None
    assert not DeadLetter.objects.filter(intent=intent).exists()
    frozen_clock.advance(5)
    assert run_once() == 0  # nothing left to send


def test_a_later_attempt_or_a_replay_skips_the_settlement(timed_out):
    from deadletters.models import DeadLetterStatus

    never = timed_out["never_arrived"]
    DeadLetter.objects.filter(intent=never).update(status=DeadLetterStatus.REPLAY_PENDING)
    action, detail = reconciliation.intent_reconcile_accepted(
        intent_id=never.pk, gateway_message_id="x"
    )
    assert action == reconciliation.SKIPPED
    assert "replay request" in detail
    delivered = timed_out["delivered"]
    action, _ = reconciliation.intent_reconcile_accepted(
        intent_id=delivered.pk, gateway_message_id="x"
    )
    assert action == reconciliation.SKIPPED
    assert Intent.objects.get(pk=never.pk).status == "exhausted"


def test_old_dead_letters_are_listed_only_while_open(rows, settings):
    """Beyond the look-back, only an open dead letter keeps an intent on the list."""
    settings.GATEWAY_ADAPTERS = {"sms": SCRIPTED, "push": SCRIPTED, "http": SCRIPTED}
    old_open = rows.intent(status="exhausted", finished_at=rows.ago(days=30), attempts_count=1)
    rows.attempt(old_open, outcome="timeout", finished_at=rows.ago(days=30))
    rows.dead_letter(old_open, status="open")
    old_resolved = rows.intent(status="exhausted", finished_at=rows.ago(days=30), attempts_count=1)
    rows.attempt(old_resolved, outcome="timeout", finished_at=rows.ago(days=30))
    rows.dead_letter(old_resolved, status="resolved")
    recent = rows.intent(status="expired", finished_at=rows.ago(days=1), attempts_count=2)
    rows.attempt(recent, outcome="timeout", finished_at=rows.ago(days=1, minutes=1))
    rows.attempt(recent, outcome="timeout", finished_at=rows.ago(days=1))
    timeout_then_503 = rows.intent(status="failed", finished_at=rows.ago(hours=1), attempts_count=2)
    rows.attempt(timeout_then_503, outcome="timeout", finished_at=rows.ago(hours=2))
    rows.attempt(timeout_then_503, outcome="rejected_permanent", finished_at=rows.ago(hours=1))
    items = reconciliation.reconcile_timeouts(resolve=False)
    assert sorted(i.intent_id for i in items) == sorted([old_open.pk, recent.pk])
    assert {i.action for i in items} == {reconciliation.MANUAL_REVIEW}


@pytest.fixture
def sms_simulator(settings):
    """The real SMS adapter against a real simulator; push and http stay scripted."""
    server, base_url = start_simulator_in_thread()
    settings.GATEWAY_ADAPTERS = {"sms": SMS_ADAPTER, "push": SCRIPTED, "http": SCRIPTED}
    settings.GATEWAY_SMS_URL = f"{base_url}/sms"
    settings.GATEWAY_SMS_STATUS_URL = f"{base_url}/sms/status"
    settings.GATEWAY_ALLOWED_HOSTS = ["127.0.0.1"]
    scripted_gateway.reset()
    yield server
    server.stop()


def test_a_real_timeout_is_resolved_through_the_simulator(
    sms_simulator: SimulatorServer, submit, frozen_clock, django_capture_on_commit_callbacks
):
    late = submit("+15550100504")  # the provider will accept it after we gave up
    lost = submit("+15550200504")  # the provider never will
    # A short attempt timeout keeps the real wait for the held (00504) requests short.
    Intent.objects.filter(pk__in=[late.pk, lost.pk]).update(attempt_timeout_s=0.3)
    with django_capture_on_commit_callbacks(execute=True):
        assert run_once() == 2
    for intent in (late, lost):
        intent.refresh_from_db()
        assert (intent.status, intent.attempts_count) == ("pending", 1)
        assert intent.attempt_rows.get().outcome == "timeout"
    received = sms_simulator.simulator.messages()
    assert sorted((m["idempotency_key"], m["status"]) for m in received) == sorted(
        [(str(late.public_id), 504), (str(lost.public_id), 504)]
    )
    # The provider processes the held message after all: the same key, now accepted.
    accepted = sms_simulator.simulator.decide(
        "/sms",
        {"Idempotency-Key": str(late.public_id)},
        json.dumps({"to": "+15550100001", "text": "hello"}).encode(),
    )
    assert accepted.status == 202
    message_id = accepted.body["message_id"]

    items = reconciliation.reconcile_timeouts(resolve=True)

    assert {(i.public_id, i.action, i.detail) for i in items} == {
        (
            str(late.public_id),
            reconciliation.RESOLVED,
            "the gateway confirmed acceptance; was pending",
        ),
        (
            str(lost.public_id),
            reconciliation.UNCONFIRMED,
            "the gateway has no record of it; left as it is",
        ),
    }
    late.refresh_from_db()
    assert (late.status, late.reason_code, late.gateway_message_id) == (
        "accepted",
        "gateway_accepted",
        message_id,
    )
    assert late.next_attempt_at is None
    lost.refresh_from_db()
    assert (lost.status, lost.attempts_count) == ("pending", 1)
    # Status lookups are not deliveries: the simulator's list holds the three POSTs only.
    assert len(sms_simulator.simulator.messages()) == 3
    # The unknown key stays listed, still askable.
    again = reconciliation.reconcile_timeouts(resolve=False)
    assert [(i.public_id, i.action) for i in again] == [
        (str(lost.public_id), reconciliation.QUERYABLE)
    ]


@pytest.mark.parametrize(
    ("status_url", "action", "detail"),
    [
        (
            "",
            reconciliation.MANUAL_REVIEW,
            "the 'sms' adapter (SmsGateway) cannot query status by idempotency key",
        ),
        (
            "https://provider.example/status",
            reconciliation.UNCONFIRMED,
            "the status query ended executor_error (host provider.example not in "
            "GATEWAY_ALLOWED_HOSTS); left as it is",
        ),
    ],
)
def test_a_built_in_adapter_that_cannot_be_asked(rows, settings, status_url, action, detail):
    settings.GATEWAY_ADAPTERS = {"sms": SMS_ADAPTER, "push": SCRIPTED, "http": SCRIPTED}
    settings.GATEWAY_SMS_STATUS_URL = status_url
    settings.GATEWAY_ALLOWED_HOSTS = ["127.0.0.1"]
    intent = rows.intent(status="exhausted", finished_at=rows.ago(hours=1), attempts_count=1)
    rows.attempt(intent, outcome="timeout", finished_at=rows.ago(hours=1))
    rows.dead_letter(intent, status="open")

    (item,) = reconciliation.reconcile_timeouts(resolve=True)

    assert (item.intent_id, item.action) == (intent.pk, action)
    assert detail in item.detail
    assert Intent.objects.get(pk=intent.pk).status == "exhausted"


def test_each_intent_is_asked_through_the_connection_its_timed_out_attempt_used(
    rows, gateways, tmp_path
):
    """A failover target's timeout may have happened on any of its connections: the one
    recorded on the attempt is asked, and one that cannot look keys up is named."""
    from gateways.connections import connections_apply, load_connection_file

    files = {
        "sim-backup": 'key = "sim-backup"\nprovider = "simulator"\nchannel = "sms"\n'
        '[settings]\nurl = "http://127.0.0.1:9/sms"\n',
        "twilio-main": 'key = "twilio-main"\nprovider = "twilio"\n'
        '[settings]\naccount_sid = "AC123"\nfrom = "+15550009999"\n'
        '[secrets]\nauth_token = "env:TWILIO_AUTH_TOKEN"\n',
    }
    specs = []
    for name, text in files.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(text, encoding="utf-8")
        spec = load_connection_file(path)
        assert spec is not None
        specs.append(spec)
    connections_apply(specs=specs, actor_label="tests")
    via_backup = rows.intent(status="exhausted", finished_at=rows.ago(hours=1), attempts_count=1)
    rows.attempt(via_backup, outcome="timeout", finished_at=rows.ago(hours=1),
                 connection="sim-backup")  # fmt: skip
    via_twilio = rows.intent(status="exhausted", finished_at=rows.ago(hours=1), attempts_count=1)
    rows.attempt(via_twilio, outcome="timeout", finished_at=rows.ago(hours=1),
                 connection="twilio-main")  # fmt: skip
    gone = rows.intent(status="exhausted", finished_at=rows.ago(hours=1), attempts_count=1)
    rows.attempt(gone, outcome="timeout", finished_at=rows.ago(hours=1), connection="sms-old")

    items = {i.intent_id: i for i in reconciliation.reconcile_timeouts(resolve=False)}

    assert items[via_backup.pk].action == reconciliation.QUERYABLE
    assert "(connection sim-backup)" in items[via_backup.pk].detail
    assert items[via_twilio.pk].action == reconciliation.MANUAL_REVIEW
    assert items[via_twilio.pk].detail.startswith(
        "the 'twilio' provider of connection 'twilio-main' cannot query status"
    )
    assert items[gone.pk].action == reconciliation.MANUAL_REVIEW
    assert items[gone.pk].detail.startswith("connection 'sms-old' is no longer configured")
