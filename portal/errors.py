"""Domain errors: services raise them; the API maps each ``code`` to an HTTP status."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refused operation. ``code`` is the stable machine-readable reason of CONTRACT.md."""

    code = "invalid_request"
    title = "Invalid request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        # The input the refusal is about, so a form can show it on that field.
        self.field = field


class InvalidRequest(DomainError):
    code = "invalid_request"
    title = "Invalid request"


class NotFound(DomainError):
    code = "not_found"
    title = "Not found"


class PermissionDenied(DomainError):
    code = "permission_denied"
    title = "Permission denied"
