"""Subscribes to intents' hooks (``intents.signals``) and serves endpoint connections.

Both receivers run inside the engine's (or the service's) recording transaction: the
events and the endpoints' health commit or roll back with the change itself.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.dispatch import receiver

from gateways.connections import connection_source_register
from intents.models import Attempt, Intent
from intents.signals import attempts_recorded, intents_changed

from .connections import endpoint_connection_specs
from .health import endpoints_record_attempts
from .outbox import CONNECTION_PREFIX, events_write_for_changes

connection_source_register(prefix=CONNECTION_PREFIX, source=endpoint_connection_specs)


@receiver(intents_changed, sender=Intent, dispatch_uid="events.outbox")
def write_events(
    sender: type[Intent], *, changes: list[tuple[Intent, str]], now: dt.datetime, **kwargs: Any
) -> None:
    events_write_for_changes(changes=changes, now=now)


@receiver(attempts_recorded, sender=Intent, dispatch_uid="events.endpoint_health")
def record_endpoint_health(
    sender: type[Intent], *, attempts: list[Attempt], now: dt.datetime, **kwargs: Any
) -> None:
    endpoints_record_attempts(attempts=attempts, now=now)
