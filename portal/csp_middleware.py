"""django-csp's middleware, with the policy of an undecorated response built once.

django-csp builds the header text from the settings on every response (it copies the
policy parts with ``dataclasses.asdict``, then copies, sorts and joins every
directive, once for the policy and once for the report-only one): the largest cost of
the whole middleware stack on an API request, which is otherwise a few dictionary
lookups. The text depends only on the two settings, on the ``@csp_update`` /
``@csp_replace`` / ``@csp`` parts a view attached to its response and on whether the
request used its nonce. A response with none of them (every API response) gets the
text built once for the settings in force; any other goes through django-csp
unchanged. ``tests/security/test_csp_middleware.py`` holds the two to the same headers.
"""

from __future__ import annotations

import http.client
from typing import Any, cast

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject
from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase

# What a view's decorators attach to its response (django-csp's own attribute names).
_POLICY_PARTS = (
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
)
_DEBUG_EXEMPT = (http.client.INTERNAL_SERVER_ERROR, http.client.NOT_FOUND)


class CSPMiddleware(DjangoCSPMiddleware):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (the policy setting, the report-only setting, their headers) last built
        self._built: tuple[Any, Any, str, str] | None = None

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if getattr(request, "_csp_nonce", None) is not None or any(
            getattr(response, name, None) is not None for name in _POLICY_PARTS
        ):
            return super().process_response(request, response)
        if response.status_code in _DEBUG_EXEMPT and settings.DEBUG:
            return response
        policy, report_only = self._policies()
        self._set(request, response, HEADER, policy, "_csp_exempt", "CONTENT_SECURITY_POLICY")
        self._set(
            request,
            response,
            HEADER_REPORT_ONLY,
            report_only,
            "_csp_exempt_ro",
            "CONTENT_SECURITY_POLICY_REPORT_ONLY",
        )
        # As django-csp does: a nonce asked for after the header was written fails loudly.
        cast(Any, request).csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response

    def _policies(self) -> tuple[str, str]:
        """Both headers for responses nothing customised, rebuilt when a setting changes."""
        config = getattr(settings, "CONTENT_SECURITY_POLICY", None)
        config_ro = getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None)
        built = self._built
        if built is None or built[0] is not config or built[1] is not config_ro:
            built = (config, config_ro, build_policy(), build_policy(report_only=True))
            self._built = built
        return built[2], built[3]

    @staticmethod
    def _set(
        request: HttpRequest,
        response: HttpResponseBase,
        header: str,
        value: str,
        exempt_attribute: str,
        setting: str,
    ) -> None:
        """django-csp's rule: not over a header the view set, an exempt response or an
        excluded path."""
        if (
            not value
            or header in response
            or getattr(response, exempt_attribute, False) is not False
        ):
            return
        prefixes = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES") or ()
        if not request.path_info.startswith(tuple(prefixes)):
            response[header] = value
