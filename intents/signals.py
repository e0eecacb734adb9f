"""The one hook by which intents announce terminal failures (DESIGN.md: no upward imports).

Sent inside the recording transaction with ``intents`` (a list) and ``now``; the
dead-letter app subscribes and writes its rows in the same transaction.
"""

from __future__ import annotations

from django.dispatch import Signal

intents_dead_lettered = Signal()

# Sent by ``registry_sync`` inside its transaction, after targets and connections are
# recorded, with ``connections`` (this run's connection specs) and ``actor_label``. A
# subscriber that keeps its own registry data (escalation rules) records it and returns
# a ``RegistryChanges``; raising ``RegistryError`` rolls the whole run back.
registry_applying = Signal()
