"""The one redaction walker: blanks secret-looking keys at any depth.

The logs (``portal.observability.logging``), the staff payload screens
(``intents.selectors.intent_payload_masked``) and the audit history
(``portal.audit.services``) all blank values through ``redact`` here, so a key the logs
hide is never kept in an audit event. Pure Python on purpose: every layer may import it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[redacted]"
# Key names that hold secrets whatever the payload: matched anywhere in the key.
SECRET_KEY_PATTERN = re.compile(
    r"passw|secret|token|api[_-]?key|authorization|otp|cookie|credential|private[_-]?key"
    r"|signature|session",
    re.IGNORECASE,
)
# Names that look secret but are not, and that an operator needs to see.
NOT_SECRET_KEYS = frozenset({"lease_token"})
# Credentials embedded in free text, e.g. a header echoed into an error message.
_INLINE_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic|api-key)\s+[A-Za-z0-9._~+/=\-]{4,}")
# A Standard Webhooks signing secret (a client endpoint's, a receipt secret) in free text.
_WEBHOOK_SECRET = re.compile(r"\bwhsec_[A-Za-z0-9+/=]{4,}")
_MAX_DEPTH = 32


def is_sensitive_key(
    key: object, extra: frozenset[str] = frozenset(), extra_pattern: re.Pattern[str] | None = None
) -> bool:
    """Whether ``key`` names a secret: the shared pattern, one of the lower-case ``extra``
    names, or (for a caller that hides more) ``extra_pattern``."""
    name = str(key).lower()
    if name in NOT_SECRET_KEYS:
        return False
    if name in extra or SECRET_KEY_PATTERN.search(name) is not None:
        return True
    return extra_pattern is not None and extra_pattern.search(name) is not None


def redact(
    value: Any,
    extra: frozenset[str] = frozenset(),
    *,
    extra_pattern: re.Pattern[str] | None = None,
    _depth: int = 0,
) -> Any:
    """A copy of ``value`` with secret-looking (or ``extra``) keys blanked at any depth and
    inline credentials (``Bearer …``) blanked in strings."""
    if _depth > _MAX_DEPTH:
        return REDACTED
    if isinstance(value, Mapping):
        return {
            key: REDACTED
            if is_sensitive_key(key, extra, extra_pattern)
            else redact(item, extra, extra_pattern=extra_pattern, _depth=_depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [
            redact(item, extra, extra_pattern=extra_pattern, _depth=_depth + 1) for item in value
        ]
    if isinstance(value, str):
        return _WEBHOOK_SECRET.sub(
            "whsec_" + REDACTED, _INLINE_CREDENTIAL.sub(r"\1 " + REDACTED, value)
        )
    return value
