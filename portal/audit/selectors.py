"""Reading the audit history: filtered event lists and the chain verification."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hmac

from django.db.models import QuerySet

from .models import GENESIS_HASH, AuditChainHead, AuditEvent
from .services import compute_hash, head_signature


def audit_events(
    *,
    since: dt.datetime | None = None,
    up_to_sequence: int | None = None,
    queryset: QuerySet[AuditEvent] | None = None,
) -> QuerySet[AuditEvent]:
    """Events in chain order, optionally from ``since`` and up to a sequence number."""
    events = (queryset if queryset is not None else AuditEvent.objects.all()).order_by("sequence")
    if since is not None:
        events = events.filter(occurred_at__gte=since)
    if up_to_sequence is not None:
        events = events.filter(sequence__lte=up_to_sequence)
    return events


def audit_head_sequence() -> int:
    """The sequence of the newest event according to the chain head (0 when empty)."""
    head = AuditChainHead.objects.filter(pk=1).values_list("sequence", flat=True).first()
    return head or 0


@dataclasses.dataclass(frozen=True, slots=True)
class ChainVerification:
    count: int
    broken_sequence: int | None = None
    reason: str = ""

    @property
    def intact(self) -> bool:
        return self.broken_sequence is None


def audit_chain_verify(
    *, chunk_size: int = 2000, expect_at_least: int | None = None
) -> ChainVerification:
    """Walk the whole chain in order and report the first event that does not fit.

    Checked per event, in this order: its sequence follows the previous one (a deleted
    row shows as a gap), its ``prev_hash`` is the previous event's hash (a re-linked or
    re-ordered row), and its own hash recomputed with the HMAC key matches (an edited
    row). Last, the chain head must name the last event and carry its HMAC signature: a
    truncated tail shows there, even when the head row was rewritten too. A checkpoint
    kept outside the database (``expect_at_least``, the ``portal_audit_head_sequence``
    gauge or the ``audit.head`` log line) catches a tail cut by someone holding the key.
    """
    expected_sequence = 1
    previous_hash = GENESIS_HASH
    count = 0
    for event in AuditEvent.objects.order_by("sequence").iterator(chunk_size=chunk_size):
        reason = _event_break(
            event, expected_sequence=expected_sequence, previous_hash=previous_hash
        )
        if reason:
            return ChainVerification(count, event.sequence, reason)
        count += 1
        previous_hash = event.hash
        expected_sequence += 1
    return _head_verify(
        count=count,
        last_sequence=expected_sequence - 1,
        last_hash=previous_hash,
        expect_at_least=expect_at_least,
    )


def _event_break(event: AuditEvent, *, expected_sequence: int, previous_hash: str) -> str:
    """Why ``event`` does not follow the previous one ("" when it does)."""
    if event.sequence != expected_sequence:
        return f"sequence gap: expected #{expected_sequence}, found #{event.sequence}"
    if not hmac.compare_digest(event.prev_hash, previous_hash):
        return "prev_hash link broken: does not match the previous hash"
    if not hmac.compare_digest(event.hash, compute_hash(event)):
        return "hash mismatch: the event's content was changed"
    return ""


def _head_verify(
    *, count: int, last_sequence: int, last_hash: str, expect_at_least: int | None
) -> ChainVerification:
    """The chain head against the last event walked (``last_hash`` its hash), and the
    checkpoint, if any."""
    head = AuditChainHead.objects.filter(pk=1).first()
    if head is None:
        if count:
            return ChainVerification(count, last_sequence, "head mismatch: the chain head is gone")
        return ChainVerification(count)
    if head.sequence != last_sequence:
        # A truncated tail: the first missing event; rows appended behind the head's
        # back: the first of them.
        first_broken = min(head.sequence, last_sequence) + 1
        return ChainVerification(
            count,
            first_broken,
            f"head mismatch: the chain head names #{head.sequence} "
            f"but the last event is #{last_sequence}",
        )
    if not hmac.compare_digest(head.last_hash, last_hash):
        return ChainVerification(
            count,
            last_sequence,
            "head mismatch: the chain head's hash differs from the last event's",
        )
    expected = head_signature(sequence=head.sequence, last_hash=head.last_hash)
    if not hmac.compare_digest(head.signature, expected):
        # Rows deleted from the tail and the head moved back onto the new last event:
        # only the holder of the audit key can sign that head.
        return ChainVerification(
            count,
            last_sequence,
            "head signature mismatch: the chain head was rewritten without the audit key "
            "(events after it may have been deleted)",
        )
    if expect_at_least is not None and last_sequence < expect_at_least:
        return ChainVerification(
            count,
            last_sequence + 1,
            f"tail missing: a checkpoint saw #{expect_at_least}, the chain ends at "
            f"#{last_sequence}",
        )
    return ChainVerification(count)
