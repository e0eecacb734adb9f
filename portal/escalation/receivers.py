"""Subscribes to the registry sync (``intents.signals.registry_applying``)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from gateways.connections import ConnectionSpec
from intents.errors import RegistryError
from intents.signals import registry_applying

from .registry import escalations_sync
from .rules import EscalationFileError


@receiver(registry_applying, dispatch_uid="escalation.sync")
def sync_escalations(
    sender: Any, *, connections: list[ConnectionSpec], actor_label: str, **kwargs: Any
) -> Any:
    """Runs inside the sync's transaction: a bad file rolls back the whole run."""
    try:
        return escalations_sync(connections=connections, actor_label=actor_label)
    except EscalationFileError as exc:
        raise RegistryError(str(exc)) from None
