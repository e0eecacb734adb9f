"""A mixed demo workload sent through the public REST API (``manage.py demo_traffic``).

It is a client like any other: it POSTs intents with an API key and an
``Idempotency-Key``, so the dashboard, the metrics and the dead-letter screens show
what a real client's traffic would produce. The recipients are the gateway
simulator's magic numbers (CONTRACT.md, "Gateway simulator"), so every path of the
engine shows up: accepted at once, accepted after retries, throttled by the gateway,
timeouts, permanent rejections and exhausted budgets.
"""

from __future__ import annotations

import dataclasses
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

INTENTS_PATH = "/api/v1/intents"


@dataclasses.dataclass(frozen=True, slots=True)
class Kind:
    """One kind of message in the mix: its share and the request that makes it."""

    name: str
    weight: int
    target: str
    payload: Callable[[int], dict[str, Any]]


def _phone(n: int, suffix: str) -> str:
    # "+1555", 6 digits, then the magic suffix; a plain number ends in "11", which no
    # magic suffix does.
    return f"+1555{n % 1_000_000:06d}{suffix or '11'}"


def _sms(suffix: str) -> Callable[[int], dict[str, Any]]:
    return lambda n: {"to": _phone(n, suffix), "text": f"Demo message {n}"}


MIX: tuple[Kind, ...] = (
    Kind("sms accepted", 55, "sms.otp", _sms("")),
    Kind(
        "push accepted",
        10,
        "push.alert",
        lambda n: {"token": f"demo-device-{n}", "title": "Demo alert"},
    ),
    Kind(
        "webhook accepted",
        5,
        "http.webhook",
        lambda n: {"to": f"https://hooks.example.com/{n}", "event": "demo.event"},
    ),
    Kind("sms accepted after 2 retries", 8, "sms.otp", _sms("00202")),
    Kind("sms rejected (dead letter)", 8, "sms.otp", _sms("00400")),
    Kind("sms 503 until exhausted (dead letter)", 5, "sms.otp", _sms("00503")),
    # 503 to the first 7 requests with one key: sms.otp's 6 attempts are exhausted (a dead
    # letter), and a replay's first attempt fails once more, its second is accepted.
    Kind("sms exhausted, delivered by a replay (dead letter)", 5, "sms.otp", _sms("00207")),
    Kind("sms 429 from the gateway", 5, "sms.otp", _sms("00429")),
    Kind("sms gateway timeouts", 4, "sms.otp", _sms("00504")),
    # Accepted, then the simulator's receipt says undelivered: a delivery_failed dead
    # letter, and the number suppressed (the demo's numbers differ by their counter).
    Kind("sms accepted, receipt undelivered (dead letter)", 3, "sms.otp", _sms("00410")),
)


class TrafficError(Exception):
    """The run cannot go on (server unreachable, key refused, a request rejected)."""


#: answers of a portal that is restarting or overloaded: the same request again, later
RETRY_STATUSES = frozenset({502, 503, 504})
RETRY_FIRST_DELAY_S = 0.5
RETRY_MAX_DELAY_S = 10.0
#: how long a run waits for an unreachable portal before it gives up
DEFAULT_GIVE_UP_AFTER_S = 120.0


@dataclasses.dataclass
class TrafficSummary:
    sent: int = 0
    statuses: Counter[int] = dataclasses.field(default_factory=Counter)
    kinds: Counter[str] = dataclasses.field(default_factory=Counter)
    seconds: float = 0.0


def send_traffic(
    client: httpx.Client,
    *,
    rate_per_s: float,
    count: int | None = None,
    duration_s: float | None = None,
    seed: int | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    on_sent: Callable[[int, Kind, int], None] | None = None,
    on_retry: Callable[[int, str, float], None] | None = None,
    give_up_after_s: float = DEFAULT_GIVE_UP_AFTER_S,
) -> TrafficSummary:
    """POST intents drawn from ``MIX`` at ``rate_per_s`` until ``count`` or ``duration_s``.

    Requests are paced against a fixed schedule (the n-th at ``start + n / rate``), so a
    slow response is caught up rather than lowering the rate. A 429 (the tenant's own
    limit) is counted and the run goes on; any other refusal stops it with the
    problem's detail, since it means the demo itself is wrong.

    A connection error or a 502/503/504 (the portal restarting) is retried with the
    same ``Idempotency-Key``, as docs/api.md advises clients: a request that did reach
    the portal creates its intent once. Retries back off up to 10 s; the run gives up
    only after ``give_up_after_s`` without an answer.
    """
    if rate_per_s <= 0:
        raise ValueError("rate_per_s must be above 0")
    if count is None and duration_s is None:
        raise ValueError("give count or duration_s")
    rng = random.Random(seed)
    weights = [kind.weight for kind in MIX]
    run_id = uuid.uuid4().hex[:8]
    summary = TrafficSummary()
    start = clock()
    while count is None or summary.sent < count:
        n = summary.sent
        delay = start + n / rate_per_s - clock()
        if delay > 0:
            sleep(delay)
        if duration_s is not None and clock() - start >= duration_s:
            break
        kind = rng.choices(MIX, weights)[0]
        status = _post_until_answered(
            client,
            kind,
            n,
            idempotency_key=f"demo-{run_id}-{n}",
            clock=clock,
            sleep=sleep,
            on_retry=on_retry,
            give_up_after_s=give_up_after_s,
        )
        summary.sent += 1
        summary.statuses[status] += 1
        summary.kinds[kind.name] += 1
        if on_sent is not None:
            on_sent(n, kind, status)
    summary.seconds = clock() - start
    return summary


def _post_until_answered(
    client: httpx.Client,
    kind: Kind,
    n: int,
    *,
    idempotency_key: str,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    on_retry: Callable[[int, str, float], None] | None,
    give_up_after_s: float,
) -> int:
    """POST one intent; transport errors and 502/503/504 again, with the same key."""
    first_try = clock()
    delay = RETRY_FIRST_DELAY_S
    while True:
        try:
            response = client.post(
                INTENTS_PATH,
                json={"target": kind.target, "payload": kind.payload(n)},
                headers={"Idempotency-Key": idempotency_key},
            )
        except httpx.TransportError as exc:
            problem = f"{exc.__class__.__name__}: {exc}"
        else:
            if response.status_code not in RETRY_STATUSES:
                return _status_of(response, kind)
            problem = f"HTTP {response.status_code}"
        if clock() - first_try >= give_up_after_s:
            raise TrafficError(
                f"cannot reach {client.base_url} ({problem}) for {give_up_after_s:g} s; "
                "is `make run` running?"
            )
        if on_retry is not None:
            on_retry(n, problem, delay)
        sleep(delay)
        delay = min(delay * 2, RETRY_MAX_DELAY_S)


def _status_of(response: httpx.Response, kind: Kind) -> int:
    if response.status_code in (200, 201, 429):
        return response.status_code
    detail = _problem_detail(response)
    if response.status_code == 401:
        raise TrafficError(f"the API key was refused: {detail}")
    raise TrafficError(f"{kind.target} was refused with {response.status_code}: {detail}")


def _problem_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        return f"{body.get('code', '?')}: {body.get('detail', '')}"
    return str(body)[:200]
