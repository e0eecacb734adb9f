"""Claiming due intents and handing them to the django-q2 workers in batches.

One django-q2 task per batch, not per intent: a task costs several database round
trips of its own, which would cap throughput far below what the claim can feed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid

from django.conf import settings
from django.db import close_old_connections, transaction

from portal import clock
from portal.accounts.models import Tenant
from portal.observability import lifecycle, metrics
from portal.observability.services import dispatcher_tick

from .execution import execute_batch, sweep_expired_leases
from .models import Intent, IntentStatus
from .selectors import due_intents_for_claim

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
    """Lease up to ``batch_size`` due intents, shared fairly between tenants.

    Each tenant with due work gets an equal share of the batch; what a tenant cannot use
    is offered again to those that filled theirs. So a tenant with a huge backlog cannot
    delay another tenant's intent by more than one batch.
    """
    token = new_lease_token(worker_id)
    with transaction.atomic():
        now = clock.db_now()
        claimed: list[Intent] = []
        remaining = batch_size
        active = list(tenant_ids)
        while remaining > 0 and active:
            share = max(1, remaining // len(active))
            this_round: list[Intent] = []
            still_hungry = []
            for tenant_id in active:
                if remaining <= 0:
                    break
                limit = min(share, remaining)
                rows = list(due_intents_for_claim(tenant_id=tenant_id, now=now, limit=limit))
                this_round.extend(rows)
                remaining -= len(rows)
                if len(rows) == limit:
                    still_hungry.append(tenant_id)
            if this_round:
                # Leased before the next round, so a second look at a tenant cannot
                # return what this transaction already took.
                _lease(this_round, token=token, now=now, lease_margin_s=lease_margin_s)
                claimed.extend(this_round)
            active = still_hungry
        if not claimed:
            return None
    for intent in claimed:
        due_at = intent.next_attempt_at or now  # a due intent has one; never negative lag
        metrics.DISPATCH_LAG.observe(max((now - due_at).total_seconds(), 0.0))
    lifecycle.claimed(claimed, lease_token=token, now=now)
    return ClaimedBatch(lease_token=token, intent_ids=[i.id for i in claimed], claimed_at=now)


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


def default_worker_id(kind: str = "dispatcher") -> str:
    return f"{kind}@{socket.gethostname()}:{os.getpid()}"


class Dispatcher:
    """The ``run_dispatcher`` loop: claim, hand off, sweep, each a method a test can call."""

    TENANT_REFRESH_S = 5.0

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
        self.worker_id = worker_id or default_worker_id()
        self.batch_size = batch_size or settings.DISPATCH_BATCH_SIZE
        self.idle_poll_s = settings.DISPATCH_IDLE_POLL_S if idle_poll_s is None else idle_poll_s
        self.max_queued = max_queued_batches or settings.DISPATCH_MAX_QUEUED_BATCHES
        self.sweep_interval_s = (
            settings.SWEEP_INTERVAL_S if sweep_interval_s is None else sweep_interval_s
        )
        self.inline = inline  # execute in this process instead of through django-q2
        self._tenants: list[int] = []
        self._tenants_loaded_at = -1e9
        self._rotation = 0
        self._last_sweep = -1e9
        self.stop_event = threading.Event()

    def tenant_order(self) -> list[int]:
        """Active tenants, rotated every batch so none is always served first."""
        if time.monotonic() - self._tenants_loaded_at > self.TENANT_REFRESH_S:
            self._tenants = list(
                Tenant.objects.filter(is_active=True).order_by("id").values_list("id", flat=True)
            )
            self._tenants_loaded_at = time.monotonic()
        if not self._tenants:
            return []
        self._rotation = (self._rotation + 1) % len(self._tenants)
        return self._tenants[self._rotation :] + self._tenants[: self._rotation]

    def claim_and_hand_off(self) -> int:
        batch = claim_batch(
            tenant_ids=self.tenant_order(),
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
