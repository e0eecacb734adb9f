"""The hooks by which intents announce what happened (DESIGN.md: no upward imports).

Every one is sent inside the transaction that records the change, so a subscriber's
rows commit or roll back with it:

- ``intents_dead_lettered`` (``intents``: a list, ``now``): terminal failures; the
  dead-letter app opens its rows.
- ``intents_changed`` (``changes``: a list of ``(intent, kind)``, ``now``): a state a
  client may want to hear of; ``kind`` is one of ``CHANGE_KINDS``. The events outbox
  subscribes. Sent for internal intents too: a subscriber tells them by ``internal``.
- ``attempts_recorded`` (``attempts``: the batch's new Attempt rows, ``now``): what each
  attempt met, for subscribers that track a destination's health.
"""

from __future__ import annotations

from django.dispatch import Signal

intents_dead_lettered = Signal()
intents_changed = Signal()
attempts_recorded = Signal()

# What ``intents_changed`` reports: a terminal status, a receipt's final word, a re-open.
CHANGE_KINDS = (
    "accepted",
    "delivered",
    "undelivered",
    "failed",
    "exhausted",
    "expired",
    "cancelled",
    "reopened",
)

# Sent by ``registry_sync`` inside its transaction, after targets and connections are
# recorded, with ``connections`` (this run's connection specs) and ``actor_label``. A
# subscriber that keeps its own registry data (escalation rules) records it and returns
# a ``RegistryChanges``; raising ``RegistryError`` rolls the whole run back.
registry_applying = Signal()
