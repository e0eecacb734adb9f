"""Per-endpoint API key scopes (``intents:write``, ``intents:read``, ...)."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission

from portal.accounts.models import ApiKey


class HasScope(BasePermission):
    """Grants when the request's API key holds the view's ``required_scope``.

    Runs after authentication, so an anonymous request still gets 401, not 403.
    """

    code = "scope_missing"

    def has_permission(self, request: Any, view: Any) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            return False
        required = view.required_scope
        if api_key.has_scope(required):
            return True
        self.message = f"This API key lacks the '{required}' scope."
        return False
