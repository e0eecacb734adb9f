"""Which connection each intent of a batch goes out through: failover, circuit, throttle.

A target lists its connections in failover order (none listed: its channel's default).
The intent's ``connection_cursor`` says where the next attempt starts; a transient
failure moves it on to the next listed connection (``cursor_after``). Here, before any
call: a connection whose circuit is open, or whose shared rate is spent, is skipped for
the next one in the list, for this very attempt. An intent with no usable connection is
deferred, not charged an attempt, until the earliest one is expected back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from gateways.base import Outcome
from gateways.circuit import Admission, CircuitView, circuit_claim_probe, circuit_views
from gateways.connections import DEFAULT_CONNECTIONS, ConnectionSpec, connection_specs
from gateways.throttle import throttle_acquire

from .models import Intent

# Outcomes after which the next attempt tries the next listed connection.
FAILOVER_OUTCOMES = frozenset({Outcome.REJECTED_TRANSIENT, Outcome.TIMEOUT, Outcome.EXECUTOR_ERROR})
THROTTLED = "throttled"
CIRCUIT_OPEN = "circuit_open"


def connections_of(contract: dict[str, Any]) -> list[str]:
    """The target's connections in failover order, or its channel's default."""
    listed = contract.get("connections")
    return list(listed) if listed else [DEFAULT_CONNECTIONS[contract["gateway"]]]


def cursor_after(contract: dict[str, Any], used_index: int, outcome: Outcome) -> int:
    """Where the intent's next attempt starts, after one on ``used_index`` ended so."""
    count = len(connections_of(contract))
    return (used_index + 1) % count if outcome in FAILOVER_OUTCOMES else used_index


@dataclasses.dataclass(slots=True)
class Route:
    intent: Intent
    timeout_s: float
    spec: ConnectionSpec
    index: int  # position of the connection in the target's list
    probe: bool = False  # this call is the connection's half-open probe


@dataclasses.dataclass(slots=True)
class Deferral:
    intent: Intent
    until: dt.datetime
    reason: str  # THROTTLED or CIRCUIT_OPEN
    connection: str


@dataclasses.dataclass(slots=True)
class Plan:
    routes: list[Route] = dataclasses.field(default_factory=list)
    deferrals: list[Deferral] = dataclasses.field(default_factory=list)
    unroutable: list[tuple[Intent, float, str]] = dataclasses.field(default_factory=list)
    specs: dict[str, ConnectionSpec] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(slots=True)
class _Candidate:
    intent: Intent
    timeout_s: float
    order: list[tuple[int, str]]  # (index in the list, key), starting at the cursor
    refusals: list[tuple[dt.datetime, str, str]] = dataclasses.field(default_factory=list)


def _candidate(intent: Intent, timeout_s: float) -> _Candidate:
    """The intent with its target's connections in the order to try, from its cursor."""
    keys = connections_of(intent.contract)
    start = intent.connection_cursor % len(keys)
    order = [((start + i) % len(keys), keys[(start + i) % len(keys)]) for i in range(len(keys))]
    return _Candidate(intent, timeout_s, order)


def plan_batch(batch: list[tuple[Intent, float]], *, now: dt.datetime) -> Plan:
    """Route every intent of a batch: one query for the specs, one for the circuits, and
    one grant per throttled connection per failover round."""
    candidates = [_candidate(intent, timeout_s) for intent, timeout_s in batch]
    all_keys = {key for c in candidates for _, key in c.order}
    specs = connection_specs(all_keys)
    views = circuit_views(all_keys)
    probes: dict[str, bool] = {}  # key -> this batch holds its probe and has not used it
    plan = Plan(specs=specs)
    waiting = candidates
    for round_number in range(max((len(c.order) for c in candidates), default=0)):
        wanted: dict[str, list[tuple[_Candidate, int]]] = {}
        still_waiting = []
        for candidate in waiting:
            if round_number >= len(candidate.order):
                _give_up(plan, candidate)
                continue
            index, key = candidate.order[round_number]
            spec = specs.get(key)
            if spec is None:
                still_waiting.append(candidate)  # retired meanwhile: try the next one
                continue
            admission = _admission(key, views[key], probes, now=now)
            if admission is Admission.PROBE:
                plan.routes.append(
                    Route(candidate.intent, candidate.timeout_s, spec, index, probe=True)
                )
            elif admission is Admission.REFUSED:
                candidate.refusals.append((views[key].refused_until(now), CIRCUIT_OPEN, key))
                still_waiting.append(candidate)
            else:
                wanted.setdefault(key, []).append((candidate, index))
        for key, group in wanted.items():
            still_waiting += _route_within_rate(plan, key, specs[key], group, now=now)
        waiting = still_waiting
    for candidate in waiting:
        _give_up(plan, candidate)
    return plan


def _admission(
    key: str, view: CircuitView, probes: dict[str, bool], *, now: dt.datetime
) -> Admission:
    """The circuit's answer for one send through ``key``: a half-open circuit admits
    the one probe this batch claims (in ``probes``, once per batch), and refuses the rest."""
    admission = view.admission(now)
    if admission is not Admission.PROBE:
        return admission
    if key not in probes:
        probes[key] = circuit_claim_probe(key=key, now=now)
    if probes[key]:
        probes[key] = False  # one probe per circuit
        return Admission.PROBE
    return Admission.REFUSED


def _route_within_rate(
    plan: Plan,
    key: str,
    spec: ConnectionSpec,
    group: list[tuple[_Candidate, int]],
    *,
    now: dt.datetime,
) -> list[_Candidate]:
    """Route as many of ``group`` through ``spec`` as its shared rate grants (all of them
    when it has none, in one grant); the others wait, each with when it would be its turn."""
    rate = spec.rate_per_second
    granted = len(group)
    grant = None
    if rate is not None:
        grant = throttle_acquire(key=key, rate=rate, wanted=len(group), now=now)
        granted = grant.granted
    waiting = []
    for position, (candidate, index) in enumerate(group):
        if position < granted:
            plan.routes.append(Route(candidate.intent, candidate.timeout_s, spec, index))
        else:
            if grant is None:  # only a throttle grants fewer than asked
                raise RuntimeError(f"Connection {key}: fewer sends granted, no throttle.")
            wait = dt.timedelta(seconds=grant.wait_s(position - granted))
            candidate.refusals.append((now + wait, THROTTLED, key))
            waiting.append(candidate)
    return waiting


def _give_up(plan: Plan, candidate: _Candidate) -> None:
    if candidate.refusals:
        until, reason, key = min(candidate.refusals)
        plan.deferrals.append(Deferral(candidate.intent, until, reason, key))
    else:
        listed = ", ".join(key for _, key in candidate.order)
        plan.unroutable.append(
            (candidate.intent, candidate.timeout_s, f"no active connection among: {listed}")
        )
