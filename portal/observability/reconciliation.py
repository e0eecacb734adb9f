"""Reconciliation of ambiguous attempts: the last attempt timed out, so the gateway may
have accepted the message even though we recorded no acceptance.

Every attempt sends the intent's public id as the gateway idempotency key, and records
the connection it went through: that connection's provider is the one asked. A provider
(for the ``simulator`` provider, its channel adapter) that can look a message up by that
key exposes the optional method::

    async def query_status(
        self, idempotency_key: str, *, timeout_s: float, request_id: str = ""
    ) -> GatewayResult | None  # None: the gateway has no record of the key

and may say through a ``can_query_status`` attribute that it cannot be asked after all
(the built-in SMS, push and HTTP adapters when their ``GATEWAY_*_STATUS_URL`` is empty).
For those gateways ``reconcile --resolve`` asks, bounded by the intent's attempt
timeout and correlated by its correlation id, and an intent the gateway confirms as
accepted is recorded as accepted (its open dead letter resolved), with an audit event.
Adapters that cannot be asked have their intents listed for an operator to check with
the provider by hand.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections import defaultdict
from typing import TYPE_CHECKING

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from deadletters.selectors import replay_holds_dead_letter_of
from deadletters.services import dead_letters_resolve_for_intent
from gateways.base import GatewayResult, Outcome
from gateways.connections import DEFAULT_CONNECTIONS, ConnectionSpec, connection_specs
from gateways.providers import UnknownProvider
from gateways.registry import GatewaySession, UnknownGateway
from intents.reconciliation import intent_lock_timed_out, intent_record_reconciled
from portal import clock
from portal.audit.services import Actor

from . import metrics, selectors
from .lifecycle import correlation_id_of
from .logging import bind_correlation, get_logger

if TYPE_CHECKING:
    from .selectors import TimedOutIntent

logger = get_logger(__name__)

DEFAULT_LOOKBACK = dt.timedelta(days=7)
DEFAULT_LIMIT = 500  # intents listed (and asked about) per run

# What happened to one listed intent.
MANUAL_REVIEW = "manual_review"  # the adapter cannot be asked
QUERYABLE = "queryable"  # the adapter can be asked; run with --resolve
RESOLVED = "resolved"  # the gateway confirmed acceptance; recorded
UNCONFIRMED = "unconfirmed"  # the gateway was asked and did not confirm acceptance
SKIPPED = "skipped"  # the intent changed meanwhile, or a replay holds it


@dataclasses.dataclass(frozen=True)
class ReconcileItem:
    intent_id: int
    public_id: str
    target_key: str
    gateway: str
    status: str
    last_attempt_at: dt.datetime | None
    action: str
    detail: str


def timed_out_candidates(*, now: dt.datetime, limit: int) -> list[TimedOutIntent]:
    return list(selectors.timed_out_intents(since=now - DEFAULT_LOOKBACK)[:limit])


def reconcile_timeouts(*, resolve: bool, limit: int = DEFAULT_LIMIT) -> list[ReconcileItem]:
    """List (and with ``resolve``, settle) intents whose last attempt timed out.

    Each intent is asked about through the connection its timed-out attempt used (a
    failover target may have tried several), so the provider that may hold the message
    is the one asked.
    """
    now = clock.db_now()
    candidates = timed_out_candidates(now=now, limit=limit)
    by_connection: dict[tuple[str, str], list[TimedOutIntent]] = defaultdict(list)
    for intent in candidates:
        key = intent.last_connection or DEFAULT_CONNECTIONS.get(intent.gateway, "")
        by_connection[(intent.gateway, key)].append(intent)
    specs = connection_specs(key for _, key in by_connection)
    items: list[ReconcileItem] = []
    for (gateway, key), intents in sorted(by_connection.items()):
        spec = specs.get(key)
        if spec is None:
            detail = (
                f"connection {key!r} is no longer configured: check the provider's records "
                "for this idempotency key (the intent id) by hand"
            )
            items.extend(_item(i, MANUAL_REVIEW, detail) for i in intents)
            continue
        listed, results = asyncio.run(_ask_connection(gateway, spec, intents, resolve=resolve))
        if listed is not None:
            items.extend(listed)
        else:  # database writes stay out of the event loop
            items.extend(_settle(i, r) for i, r in zip(intents, results, strict=True))
    return items


def _item(intent: TimedOutIntent, action: str, detail: str) -> ReconcileItem:
    return ReconcileItem(
        intent_id=intent.id,
        public_id=str(intent.public_id),
        target_key=intent.target_key,
        gateway=intent.gateway,
        status=intent.status,
        last_attempt_at=intent.last_attempt_at,
        action=action,
        detail=detail,
    )


def _cannot_ask(gateway: str, spec: ConnectionSpec, provider: object) -> str:
    adapter = getattr(provider, "adapter", None)
    if spec.config.provider == "simulator" and adapter is not None:
        what = f"the {gateway!r} adapter ({type(adapter).__name__})"
    else:
        what = f"the {spec.config.provider!r} provider of connection {spec.key!r}"
    return (
        f"{what} cannot query status by idempotency key: check the provider's records for "
        "this idempotency key (the intent id) by hand"
    )


async def _ask_connection(
    gateway: str, spec: ConnectionSpec, intents: list[TimedOutIntent], *, resolve: bool
) -> tuple[list[ReconcileItem] | None, list[GatewayResult | BaseException | None]]:
    """Either the items as listed (nothing to ask), or the provider's answer per intent."""
    async with GatewaySession() as session:
        try:
            provider = session.connection(spec.config)
        except (UnknownGateway, UnknownProvider, ImproperlyConfigured) as exc:
            return [_item(i, MANUAL_REVIEW, str(exc)) for i in intents], []
        query_status = getattr(provider, "query_status", None)
        if not callable(query_status) or not getattr(provider, "can_query_status", True):
            detail = _cannot_ask(gateway, spec, provider)
            return [_item(i, MANUAL_REVIEW, detail) for i in intents], []
        if not resolve:
            detail = f"the gateway can be asked (connection {spec.key}): run with --resolve"
            return [_item(i, QUERYABLE, detail) for i in intents], []
        results = await asyncio.gather(
            *(
                query_status(
                    str(i.public_id),
                    timeout_s=i.attempt_timeout_s,
                    request_id=correlation_id_of(i),
                )
                for i in intents
            ),
            return_exceptions=True,
        )
    return None, list(results)


def _settle(intent: TimedOutIntent, result: GatewayResult | BaseException | None) -> ReconcileItem:
    with bind_correlation(correlation_id_of(intent), intent_id=str(intent.public_id)):
        if isinstance(result, BaseException):
            metrics.RECONCILED.labels(result="error").inc()
            logger.warning("intent.reconcile_failed", error=f"{type(result).__name__}: {result}")
            return _item(intent, UNCONFIRMED, f"status query failed: {type(result).__name__}")
        if result is None or result.outcome != Outcome.ACCEPTED:
            metrics.RECONCILED.labels(result="unconfirmed").inc()
            if result is None:
                said = "the gateway has no record of it"
            else:
                said = f"the status query ended {result.outcome}"
                said += f" ({result.error})" if result.error else ""
            return _item(intent, UNCONFIRMED, f"{said}; left as it is")
        action, detail = intent_reconcile_accepted(
            intent_id=intent.id, gateway_message_id=result.message_id
        )
        return _item(intent, action, detail)


def intent_reconcile_accepted(*, intent_id: int, gateway_message_id: str) -> tuple[str, str]:
    """Record a gateway-confirmed acceptance of an intent whose last attempt timed out,
    and resolve its open dead letter, in one transaction. Returns (action, detail).

    Re-checks everything under the intent's row lock: it must still be retrying or
    dead-lettered, its last attempt must still be the timeout, and no replay may hold
    its dead letter. The writes are the apps' own (``intents.reconciliation``,
    ``deadletters.services``); this only decides they belong together.
    """
    actor = Actor.system("reconcile")
    with transaction.atomic():
        now = clock.db_now()
        intent, refused = intent_lock_timed_out(intent_id=intent_id)
        if refused is None and replay_holds_dead_letter_of(
            intent_id=intent.pk, generation=intent.generation
        ):
            refused = "a replay request holds its dead letter; decide that first"
        if refused is not None:
            return SKIPPED, refused
        resolved = dead_letters_resolve_for_intent(
            intent=intent,
            actor=actor,
            reason="the gateway confirmed acceptance of the timed-out attempt (reconcile)",
            now=now,
        )
        previous = intent_record_reconciled(
            intent=intent,
            gateway_message_id=gateway_message_id,
            dead_letters_resolved=resolved,
            actor=actor,
            now=now,
        )
        transaction.on_commit(lambda: metrics.RECONCILED.labels(result="accepted").inc())
    logger.info("intent.reconciled", previous_status=previous, dead_letters_resolved=resolved)
    detail = f"the gateway confirmed acceptance; was {previous}"
    if resolved:
        detail += f", {resolved} dead letter(s) resolved"
    return RESOLVED, detail
