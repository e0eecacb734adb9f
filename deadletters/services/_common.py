"""What the dead-letter services share: text limits, the operator's lock on a dead letter,
and moving many dead letters from one status to another."""

from __future__ import annotations

import datetime as dt
from typing import Any

from portal.accounts.roles import OPERATORS, require_role, require_tenant_visible
from portal.errors import InvalidRequest
from portal.sql_limits import IN_LIST_CHUNK

from ..models import DeadLetter

MAX_NOTE_CHARS = 10_000
MAX_REASON_CHARS = 2_000


def require_text(value: Any, *, name: str, max_chars: int) -> str:
    text = str(value or "").strip()
    if not text:
        raise InvalidRequest(f"A {name} is required.")
    if len(text) > max_chars:
        raise InvalidRequest(f"The {name} is longer than {max_chars} characters.")
    return text


def lock_dead_letter(*, dead_letter: DeadLetter, actor: Any) -> DeadLetter:
    require_role(actor, OPERATORS)
    require_tenant_visible(actor, dead_letter.tenant_id)
    return DeadLetter.objects.select_for_update().get(pk=dead_letter.pk)


def set_status(pks: list[int], status: str, now: dt.datetime, *, only: str | None = None) -> int:
    changed = 0
    for start in range(0, len(pks), IN_LIST_CHUNK):
        rows = DeadLetter.objects.filter(pk__in=pks[start : start + IN_LIST_CHUNK])
        if only is not None:
            rows = rows.filter(status=only)
        changed += rows.update(status=status, updated_at=now)
    return changed
