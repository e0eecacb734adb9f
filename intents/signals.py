"""The one hook by which intents announce terminal failures (DESIGN.md: no upward imports).

Sent inside the recording transaction with ``intents`` (a list) and ``now``; the
dead-letter app subscribes and writes its rows in the same transaction.
"""

from __future__ import annotations

from django.dispatch import Signal

intents_dead_lettered = Signal()
