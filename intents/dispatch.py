"""Claiming due intents and handing them to the django-q2 workers in batches.

One django-q2 task per batch, not per intent: a task costs several database round
trips of its own, which would cap throughput far below what the claim can feed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
import uuid

from django.conf import settings
from django.db import close_old_connections, transaction

from portal import clock
from portal.observability import lifecycle, metrics, tracing
from portal.observability.services import dispatcher_tick
from portal.process import process_worker_id

from .due_tenants import DueTenants
from .execution import execute_batch, sweep_expired_leases
from .models import Intent, IntentStatus
from .selectors import due_intents_for_claim, lock_due_intents, ranked_due_intents

logger = logging.getLogger("intents.dispatch")


@dataclasses.dataclass(frozen=True, slots=True)
class ClaimedBatch:
    lease_token: str
    intent_ids: list[int]
    claimed_at: dt.datetime


def new_lease_token(worker_id: str) -> str:
    return f"{worker_id[:40]}:{uuid.uuid4().hex[:16]}"


def claim_batch(
    *, tenant_ids: list[int], batch_size: int, worker_id: str, lease_margin_s: float
) -> ClaimedBatch | None:
    """Lease up to ``batch_size`` due intents of these tenants, shared fairly between them.

    One claim over a fixed list of tenants (tests, the bench); the dispatcher keeps a
    ``DueTenants`` across claims instead (``claim_from``).
    """
    return claim_from(
        DueTenants(tenant_ids, refreshing=False),
        batch_size=batch_size,
        worker_id=worker_id,
        lease_margin_s=lease_margin_s,
    )


def claim_from(
    tenants: DueTenants, *, batch_size: int, worker_id: str, lease_margin_s: float
) -> ClaimedBatch | None:
    """Lease up to ``batch_size`` due intents from the next tenants in rotation.

    The next ``batch_size`` tenants with due work (at most) each get an equal share of
    the batch; what a tenant cannot use is offered again to those that filled theirs.
    Visited tenants go to the back of the rotation (or leave it, with nothing left), so
    with more tenants than the batch has room for, every one is served within
    ⌈tenants / batch size⌉ batches, and a tenant with a huge backlog cannot delay
    another tenant's intent by more than that. The statements per claim depend on the
    tenants visited that have a big backlog (one seek each), never on tenants with
    nothing due.
    """
    started_ns = time.time_ns()
    claimed, token, now = _lease_next(
        tenants, batch_size=batch_size, worker_id=worker_id, lease_margin_s=lease_margin_s
    )
    if not claimed:
        return None
    tracing.claim_recorded(claimed, started_ns=started_ns)
    for intent in claimed:
        due_at = intent.next_attempt_at or now  # a due intent has one; never negative lag
        metrics.DISPATCH_LAG.observe(max((now - due_at).total_seconds(), 0.0))
    lifecycle.claimed(claimed, lease_token=token, now=now)
    return ClaimedBatch(lease_token=token, intent_ids=[i.id for i in claimed], claimed_at=now)


def _lease_next(
    tenants: DueTenants, *, batch_size: int, worker_id: str, lease_margin_s: float
) -> tuple[list[Intent], str, dt.datetime]:
    """The claim's transaction: the intents leased (none when nothing is due), the lease
    token and the database time of the claim."""
    token = new_lease_token(worker_id)
    with transaction.atomic():
        now = clock.db_now()
        tenants.refresh(now)
        claimed: list[Intent] = []
        remaining = batch_size
        active = tenants.next_up(batch_size)
        visits: dict[int, tuple[bool, int | None]] = {}
        while remaining > 0 and active:
            active = active[:remaining]
            share = remaining // len(active)
            this_round, found = _claim_round(tenants, active, share=share, now=now)
            if this_round:
                # Leased before the next round, so a second look at a tenant cannot
                # return what this transaction already took.
                _lease(this_round, token=token, now=now, lease_margin_s=lease_margin_s)
                claimed.extend(this_round)
                remaining -= len(this_round)
            for tenant_id, (more, due_count) in found.items():
                counted = visits.get(tenant_id, (False, None))[1]  # a seek does not count
                visits[tenant_id] = (more, counted if due_count is None else due_count)
            active = [t for t in active if found[t][0]]
        for tenant_id, (more, due_count) in visits.items():
            tenants.visited(tenant_id, more=more, due_count=due_count)
    return claimed, token, now


def _claim_round(
    tenants: DueTenants, active: list[int], *, share: int, now: dt.datetime
) -> tuple[list[Intent], dict[int, tuple[bool, int | None]]]:
    """Up to ``share`` locked due intents of each tenant.

    Returns them with, per tenant, (has more due work, its due count when known).
    Tenants with a small backlog go together through one ranked query; a heavy tenant,
    or a lone one, through one bounded seek.
    """
    light = [t for t in active if not tenants.is_heavy(t)]
    seek = [t for t in active if tenants.is_heavy(t)]
    if len(light) < 2:
        seek, light = active, []
    rows: list[Intent] = []
    found: dict[int, tuple[bool, int | None]] = {}
    if light:
        chosen: list[int] = []
        found = dict.fromkeys(light, (False, 0))
        for ranked in ranked_due_intents(tenant_ids=light, now=now, limit=share):
            found[ranked["tenant_id"]] = (ranked["due"] > share, ranked["due"])
            if ranked["rank"] <= share:
                chosen.append(ranked["id"])
        if chosen:
            rows.extend(lock_due_intents(ids=chosen, now=now))
    for tenant_id in seek:
        got = list(due_intents_for_claim(tenant_id=tenant_id, now=now, limit=share))
        rows.extend(got)
        found[tenant_id] = (len(got) == share, None)
    return rows, found


def _lease(intents: list[Intent], *, token: str, now: dt.datetime, lease_margin_s: float) -> None:
    timeout = max(i.attempt_timeout_s for i in intents)
    Intent.objects.filter(id__in=[i.id for i in intents]).update(
        status=IntentStatus.IN_FLIGHT,
        lease_owner=token,
        lease_expires_at=now + dt.timedelta(seconds=timeout + lease_margin_s),
        updated_at=now,
    )


def hand_to_workers(batch: ClaimedBatch) -> None:
    """Queue the batch for the django-q2 cluster (ids only; the task reloads the rows)."""
    from django_q.tasks import async_task

    async_task(
        "intents.tasks.execute_batch",
        batch.lease_token,
        batch.intent_ids,
        task_name=f"batch {batch.lease_token}",
    )


def queued_batches() -> int:
    from django_q.brokers import get_broker

    return get_broker().queue_size() or 0


class Dispatcher:
    """The ``run_dispatcher`` loop: claim, hand off, sweep, each a method a test can call."""

    def __init__(
        self,
        *,
        worker_id: str | None = None,
        batch_size: int | None = None,
        idle_poll_s: float | None = None,
        max_queued_batches: int | None = None,
        sweep_interval_s: float | None = None,
        inline: bool = False,
    ) -> None:
        self.worker_id = worker_id or process_worker_id("dispatcher")
        self.batch_size = batch_size or settings.DISPATCH_BATCH_SIZE
        self.idle_poll_s = settings.DISPATCH_IDLE_POLL_S if idle_poll_s is None else idle_poll_s
        self.max_queued = max_queued_batches or settings.DISPATCH_MAX_QUEUED_BATCHES
        self.sweep_interval_s = (
            settings.SWEEP_INTERVAL_S if sweep_interval_s is None else sweep_interval_s
        )
        self.inline = inline  # execute in this process instead of through django-q2
        self.due_tenants = DueTenants()
        self._last_sweep = -1e9
        self.stop_event = threading.Event()

    def claim_and_hand_off(self) -> int:
        batch = claim_from(
            self.due_tenants,
            batch_size=self.batch_size,
            worker_id=self.worker_id,
            lease_margin_s=settings.LEASE_MARGIN_S,
        )
        if batch is None:
            return 0
        if self.inline:
            execute_batch(lease_token=batch.lease_token, intent_ids=batch.intent_ids)
        else:
            hand_to_workers(batch)
        return len(batch.intent_ids)

    def sweep_if_due(self) -> int:
        if time.monotonic() - self._last_sweep < self.sweep_interval_s:
            return 0
        self._last_sweep = time.monotonic()
        return sweep_expired_leases()

    def workers_saturated(self) -> bool:
        # Claimed-but-queued batches hold leases; claiming more than the workers can
        # take only makes those leases older.
        return not self.inline and queued_batches() >= self.max_queued

    def step(self) -> int:
        """One turn of the loop; returns how many intents were claimed."""
        self.sweep_if_due()
        if self.workers_saturated():
            return 0
        return self.claim_and_hand_off()

    def run(self) -> None:
        logger.info("dispatcher %s started (batch %s)", self.worker_id, self.batch_size)
        while not self.stop_event.is_set():
            try:
                # Throttled: a heartbeat (for /readyz) and a ping the workers answer.
                dispatcher_tick(worker_id=self.worker_id, info={"batch_size": self.batch_size})
                claimed = self.step()
            except Exception:
                logger.exception("dispatcher step failed; retrying")
                close_old_connections()
                claimed = 0
            if claimed < self.batch_size:
                self.stop_event.wait(self.idle_poll_s)
        logger.info("dispatcher %s stopped", self.worker_id)


def run_once(*, batch_size: int = 100, max_batches: int = 1000) -> int:
    """Drain everything due now in this process (tests and the replay flow use it)."""
    dispatcher = Dispatcher(batch_size=batch_size, inline=True, sweep_interval_s=0)
    total = dispatcher.sweep_if_due()
    for _ in range(max_batches):
        claimed = dispatcher.claim_and_hand_off()
        total += claimed
        if claimed == 0:
            break
    return total
