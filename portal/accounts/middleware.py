"""Absolute session lifetime; the idle timeout is the session cookie age (see settings)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import cast

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url

LOGIN_AT_SESSION_KEY = "portal_login_at"
SESSION_EXPIRED_FLAG = "portal_session_expired"


class _LoggingOutRequest(HttpRequest):
    """A request this middleware logs out: for type checking only."""

    portal_logout_reason: str


class SessionTimeoutMiddleware:
    """Log a user out ``SESSION_ABSOLUTE_TIMEOUT_S`` after login, however active they are.

    The login time is written into the session by the ``user_logged_in`` handler; a
    logged-in session without one (made before this middleware existed) counts as expired.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.SESSION_COOKIE_NAME not in request.COOKIES:
            # No session, so nobody logged in by one (an API request carries a Bearer
            # key): skip resolving the lazy user and its session on every API request.
            return self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and self._expired(request):
            # Read back by the user_logged_out handler (signals.py) for the audit event.
            cast(_LoggingOutRequest, request).portal_logout_reason = "absolute_timeout"
            logout(request)
            request.session[SESSION_EXPIRED_FLAG] = True
            return redirect_to_login(request.get_full_path(), resolve_url(settings.LOGIN_URL))
        return self.get_response(request)

    @staticmethod
    def _expired(request: HttpRequest) -> bool:
        login_at = request.session.get(LOGIN_AT_SESSION_KEY)
        if not isinstance(login_at, int | float):
            return True
        timeout_s: float = settings.SESSION_ABSOLUTE_TIMEOUT_S
        return time.time() - login_at > timeout_s
