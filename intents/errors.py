"""Errors the intent and registry services raise (codes from CONTRACT.md)."""

from __future__ import annotations

from portal.errors import DomainError, NotFound


class IdempotencyKeyInvalid(DomainError):
    code = "idempotency_key_invalid"
    title = "Idempotency-Key missing or invalid"


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    title = "Idempotency-Key already used for a different request"


class TargetUnknown(DomainError):
    code = "target_unknown"
    title = "Unknown target"


class ContractIncompatible(DomainError):
    code = "contract_incompatible"
    title = "Contract version not compatible with the registry"


class PayloadInvalid(DomainError):
    code = "payload_invalid"
    title = "Payload does not match the target's schema"


class TargetNotAllowed(DomainError):
    code = "target_not_allowed"
    title = "Target not allowed for this tenant"


class QuotaExceeded(DomainError):
    code = "quota_exceeded"
    title = "Too many open intents"

    def __init__(self, detail: str, *, retry_after_s: int = 60) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class RateLimited(DomainError):
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after_s: float) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class AlreadyTerminal(DomainError):
    code = "already_terminal"
    title = "Intent already finished"


class IntentNotFound(NotFound):
    code = "not_found"
    title = "Intent not found"


class RegistryError(DomainError):
    """A target file that cannot be loaded; ``detail`` names the path and the reason."""

    code = "registry_invalid"
    title = "Target registry file invalid"
