"""``manage.py demo_traffic``: a mixed workload through the real REST API (in-process WSGI)."""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import CommandError, call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from intents import demo_traffic
from intents.demo_traffic import MIX, TrafficError, send_traffic
from intents.models import Intent
from intents.registry import registry_sync
from portal.accounts.models import ALL_SCOPES, ApiKey, Tenant

pytestmark = pytest.mark.django_db

MAGIC = ("00400", "00503", "00429", "00504", "00202", "00207", "00410")


@pytest.fixture
def demo_key() -> str:
    """The real registry (conf/targets, as make run loads it) and a key of tenant demo."""
    registry_sync(directory=Path(settings.TARGETS_DIR), actor_label="tests")
    tenant = Tenant.objects.create(name="demo")
    _, key = ApiKey.objects.create_key(name="demo", tenant=tenant, scopes=ALL_SCOPES)
    return key


@contextlib.contextmanager
def wsgi_client(key: str | None) -> Iterator[httpx.Client]:
    """An httpx client served by Django's WSGI handler in this thread and transaction.

    As Django's test client does, the connection is not closed at the end of each
    request: it holds the test's transaction.
    """
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        with httpx.Client(
            transport=httpx.WSGITransport(app=WSGIHandler()),
            base_url="http://testserver",
            headers=headers,
        ) as client:
            yield client
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


class FakeTime:
    """The run's clock and sleep: sleeping moves the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def recipient(intent: Intent) -> str:
    payload = json.loads(bytes(intent.payload))
    return payload.get("to") or payload["token"]


def test_every_kind_of_the_mix_is_created_as_a_valid_intent(demo_key):
    fake = FakeTime()
    with wsgi_client(demo_key) as client:
        summary = send_traffic(
            client, rate_per_s=5, count=200, seed=7, clock=fake.clock, sleep=fake.sleep
        )
    assert summary.sent == 200
    assert summary.statuses == Counter({201: 200})  # every payload passed its schema
    assert set(summary.kinds) == {kind.name for kind in MIX}  # 200 draws cover the mix
    intents = list(Intent.objects.all())
    assert len(intents) == 200
    by_target = Counter(i.target_key for i in intents)
    expected: Counter[str] = Counter()
    for kind in MIX:
        expected[kind.target] += summary.kinds[kind.name]
    assert by_target == expected
    # The simulator decides by the recipient's ending: every magic ending is present,
    # and the plain numbers end in none of them.
    endings = Counter(next((m for m in MAGIC if recipient(i).endswith(m)), "") for i in intents)
    assert set(endings) == {"", *MAGIC}
    plain = sum(summary.kinds[k.name] for k in MIX if k.name.endswith("accepted"))
    assert endings[""] == plain
    # Paced on a fixed schedule: the 200th of 5 per second starts 39.8 s after the first.
    assert summary.seconds == pytest.approx(39.8)
    assert len(fake.sleeps) == 199
    assert all(s == pytest.approx(0.2) for s in fake.sleeps)


def test_a_slow_response_is_caught_up_not_added(demo_key):
    fake = FakeTime()

    def first_is_slow(n, kind, status):
        if n == 0:
            fake.now += 0.5  # the first request took 0.5 s: the next four are due already

    with wsgi_client(demo_key) as client:
        summary = send_traffic(
            client,
            rate_per_s=10,
            count=7,
            clock=fake.clock,
            sleep=fake.sleep,
            on_sent=first_is_slow,
        )
    assert summary.sent == 7
    assert fake.sleeps == [pytest.approx(0.1)]  # only the 7th (due at 0.6 s) waited
    assert summary.seconds == pytest.approx(0.6)


def test_duration_bounds_the_run(demo_key):
    fake = FakeTime()
    with wsgi_client(demo_key) as client:
        summary = send_traffic(
            client, rate_per_s=4, duration_s=2.0, clock=fake.clock, sleep=fake.sleep
        )
    assert summary.sent == 8
    assert Intent.objects.count() == 8


def test_a_refused_key_stops_the_run_with_the_reason(demo_key):
    with (
        wsgi_client("nope.nope") as client,
        pytest.raises(TrafficError, match="API key was refused"),
    ):
        send_traffic(client, rate_per_s=1, count=3, clock=FakeTime().clock, sleep=FakeTime().sleep)
    assert not Intent.objects.exists()


def test_a_rejected_request_names_the_target_and_the_problem(demo_key, monkeypatch):
    broken = demo_traffic.Kind("broken", 1, "sms.otp", lambda n: {"to": "nobody"})
    monkeypatch.setattr(demo_traffic, "MIX", (broken,))
    with wsgi_client(demo_key) as client, pytest.raises(TrafficError) as caught:
        send_traffic(client, rate_per_s=1, count=1, clock=FakeTime().clock, sleep=FakeTime().sleep)
    assert str(caught.value).startswith("sms.otp was refused with 422: payload_invalid")


def test_the_tenant_rate_limit_is_counted_and_the_run_goes_on(demo_key):
    Tenant.objects.filter(name="demo").update(rate_limit_per_minute=3)
    fake = FakeTime()
    with wsgi_client(demo_key) as client:
        summary = send_traffic(client, rate_per_s=100, count=5, clock=fake.clock, sleep=fake.sleep)
    assert summary.statuses == Counter({201: 3, 429: 2})
    assert Intent.objects.count() == 3


def test_the_command_refuses_bad_input_in_one_line(tmp_path):
    with pytest.raises(CommandError, match=r"no .*missing\.json: run `manage\.py seed_demo`"):
        call_command("demo_traffic", "--credentials", str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(CommandError, match="holds no api_key"):
        call_command("demo_traffic", "--credentials", str(tmp_path / "bad.json"))
    with pytest.raises(CommandError, match="must be an http"):
        call_command("demo_traffic", "--api-key", "k", "--url", "ftp://example.com")
    with pytest.raises(CommandError, match="must be above 0"):
        call_command("demo_traffic", "--api-key", "k", "--rate", "0")


def test_the_command_reports_an_unreachable_portal(tmp_path):
    with pytest.raises(CommandError, match=r"cannot reach http://127\.0\.0\.1:9 .*make run"):
        call_command(
            "demo_traffic",
            "--api-key",
            "k",
            "--url",
            "http://127.0.0.1:9",
            "--count",
            "1",
            "--give-up-after",
            "0",
        )


class FlakyTransport(httpx.BaseTransport):
    """Resets the first connections, answers 503 once, then hands over to the portal."""

    def __init__(self, inner: httpx.BaseTransport, failures: list[str]) -> None:
        self.inner = inner
        self.failures = failures
        self.keys: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.keys.append(request.headers["Idempotency-Key"])
        if self.failures:
            failure = self.failures.pop(0)
            if failure == "reset":
                raise httpx.ReadError("[Errno 104] Connection reset by peer", request=request)
            return httpx.Response(503, request=request)
        return self.inner.handle_request(request)


def test_a_connection_reset_is_retried_with_the_same_key(demo_key):
    fake = FakeTime()
    retries: list[tuple[int, str, float]] = []
    transport = FlakyTransport(httpx.WSGITransport(app=WSGIHandler()), ["reset", "503", "reset"])
    with wsgi_client(demo_key) as client:
        client._transport = transport  # the same client, behind a flaky network
        summary = send_traffic(
            client,
            rate_per_s=1,
            count=2,
            seed=1,
            clock=fake.clock,
            sleep=fake.sleep,
            on_retry=lambda n, problem, delay: retries.append((n, problem, delay)),
        )
    assert summary.statuses == Counter({201: 2})
    assert Intent.objects.count() == 2
    # Four tries of the first intent, all with its key; backing off 0.5, 1, 2 s.
    assert transport.keys[:4] == [transport.keys[0]] * 4
    assert transport.keys[4] != transport.keys[0]
    assert [(n, delay) for n, _, delay in retries] == [(0, 0.5), (0, 1.0), (0, 2.0)]
    assert retries[0][1].startswith("ReadError") and retries[1][1] == "HTTP 503"


def test_an_unreachable_portal_is_given_up_after_the_window(demo_key):
    fake = FakeTime()
    transport = FlakyTransport(httpx.WSGITransport(app=WSGIHandler()), ["reset"] * 100)
    with wsgi_client(demo_key) as client, pytest.raises(TrafficError, match="for 30 s"):
        client._transport = transport
        send_traffic(
            client, rate_per_s=1, count=1, clock=fake.clock, sleep=fake.sleep, give_up_after_s=30
        )
    assert fake.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]  # capped at 10 s
    assert not Intent.objects.exists()
