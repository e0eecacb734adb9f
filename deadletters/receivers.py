"""Subscribes to the engine's terminal-failure hook (``intents.signals``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.dispatch import receiver

from intents.models import Intent
from intents.signals import intents_dead_lettered

from .services import dead_letters_create_for


@receiver(intents_dead_lettered, sender=Intent, dispatch_uid="deadletters.create")
def create_dead_letters(
    sender: type[Intent], *, intents: list[Intent], now: dt.datetime, **kwargs: Any
) -> None:
    """Runs inside the engine's recording transaction: the rows commit with the intents."""
    dead_letters_create_for(intents=intents, now=now)
