"""Guards around every request: NUL characters refused, API responses never cached.

Refuse a request whose path or query string holds a NUL character, before any view.

No field of the portal may hold one, and PostgreSQL cannot even compare a text column
with one (``ValueError: A string literal cannot contain NUL``), so an admin filter, a
search box or an API filter fed ``%00`` would otherwise end in a 500. The API answers
its problem+json ``invalid_request``; every other page a plain 400.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

from portal.api.problems import is_api_request, problem_http_response

NUL = "\x00"
REFUSAL = "A request may not contain NUL characters (%00) in its path or parameters."


def parameters_with_nul(request: HttpRequest) -> list[str]:
    """The query parameters holding a NUL in their name or a value (``path`` for the path)."""
    found = ["path"] if NUL in request.path else []
    found += [
        name.replace(NUL, "\\0")
        for name, values in request.GET.lists()
        if NUL in name or any(NUL in value for value in values)
    ]
    return found


class NulCharacterGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = parameters_with_nul(request)
        if refused:
            if is_api_request(request):
                errors = [
                    {"parameter": name, "message": "May not contain NUL."} for name in refused
                ]
                return problem_http_response(request, "invalid_request", REFUSAL, errors=errors)
            return HttpResponseBadRequest(REFUSAL, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


class ApiNoStoreMiddleware:
    """``Cache-Control: no-store`` on every API response that does not set its own: they
    carry a tenant's data and must not stay in a browser's or a shared proxy's cache."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if is_api_request(request) and "Cache-Control" not in response:
            response["Cache-Control"] = "no-store"
        return response
