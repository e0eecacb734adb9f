"""Operations on dead letters, their evidence and four-eyes replay requests.

Plain functions with keyword-only arguments, one transaction each, refusing with a
domain error; every operator action writes its audit event in the transaction of the
change. Step-up codes are checked *before* the transaction opens (see
``portal.accounts.stepup``): a wrong code's throttling must stick even though the
action is refused.

One module per entity; every public name is re-exported here, so callers import
``deadletters.services`` and never need to know which module holds what.
"""

from __future__ import annotations

from .dead_letters import (
    dead_letter_assign,
    dead_letter_discard,
    dead_letter_resolve,
    dead_letters_create_for,
    dead_letters_resolve_for_intent,
)
from .evidence import (
    evidence_add_file,
    evidence_add_link,
    evidence_add_note,
    evidence_file_open,
)
from .replay_decisions import (
    replay_request_approve,
    replay_request_reject,
    replay_requests_expire,
)
from .replay_execution import replay_execute
from .replay_requests import (
    ReplayPlan,
    replay_plan,
    replay_request_create,
)
from .retention import DeadLettersPurged, dead_letters_purge, dead_letters_purge_count

__all__ = [
    "DeadLettersPurged",
    "ReplayPlan",
    "dead_letter_assign",
    "dead_letter_discard",
    "dead_letter_resolve",
    "dead_letters_create_for",
    "dead_letters_purge",
    "dead_letters_purge_count",
    "dead_letters_resolve_for_intent",
    "evidence_add_file",
    "evidence_add_link",
    "evidence_add_note",
    "evidence_file_open",
    "replay_execute",
    "replay_plan",
    "replay_request_approve",
    "replay_request_create",
    "replay_request_reject",
    "replay_requests_expire",
]
