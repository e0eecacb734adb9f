"""Errors the dead-letter, evidence and replay services raise."""

from __future__ import annotations

from portal.errors import DomainError, InvalidRequest, NotFound, PermissionDenied


class DeadLetterNotFound(NotFound):
    code = "not_found"
    title = "Dead letter not found"


class ReplayRequestNotFound(NotFound):
    code = "not_found"
    title = "Replay request not found"


class InvalidTransition(DomainError):
    """The object is not in a state that allows this operation (e.g. resolving a replayed one)."""

    code = "invalid_state"
    title = "Not allowed in the current state"


class EvidenceRejected(InvalidRequest):
    code = "evidence_rejected"
    title = "Evidence refused"


class AlreadyInReplay(InvalidTransition):
    code = "already_in_replay"
    title = "Dead letter already in a pending replay request"


class NothingToReplay(InvalidRequest):
    code = "nothing_to_replay"
    title = "No open dead letter matches"


class SelfApprovalRefused(PermissionDenied):
    code = "self_approval"
    title = "Requesters cannot decide their own replay request"


class ReplayRequestExpired(InvalidTransition):
    code = "replay_expired"
    title = "Replay request expired"
