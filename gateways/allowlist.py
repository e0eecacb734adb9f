"""The host allow-list: adapters only ever call hosts an administrator listed.

Checked before every request, so a bad ``GATEWAY_*_URL`` (or a future per-target URL)
can never make the service call an arbitrary host.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings

ALLOWED_SCHEMES = frozenset({"http", "https"})


class GatewayHostNotAllowed(ValueError):
    """The URL's scheme or host is not allowed; no request was made."""


def allowed_hosts() -> frozenset[str]:
    """``settings.GATEWAY_ALLOWED_HOSTS``, normalised for comparison."""
    return frozenset(
        host.strip().lower().strip("[]") for host in settings.GATEWAY_ALLOWED_HOSTS if host.strip()
    )


def check_url_allowed(url: str) -> None:
    """Raise ``GatewayHostNotAllowed`` unless ``url`` is http(s) to an allowed host.

    Exact host match, case-insensitive: ``sub.example.com`` is not allowed by
    ``example.com``, and the port does not matter.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname  # lower-cased, without brackets or port
    except ValueError as exc:
        raise GatewayHostNotAllowed(f"gateway URL is malformed: {exc}") from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise GatewayHostNotAllowed(
            f"scheme {parts.scheme or '(none)'!r} not allowed; use http or https"
        )
    if not host:
        raise GatewayHostNotAllowed("gateway URL has no host")
    if host not in allowed_hosts():
        raise GatewayHostNotAllowed(f"host {host} not in GATEWAY_ALLOWED_HOSTS")
