"""A client's own HTTP endpoint: the payload posted as JSON to the connection's ``url``.

With a ``signing_secret`` (``whsec_…``) each request is signed as the Standard Webhooks
specification says (``webhook-id``, ``webhook-timestamp``, ``webhook-signature:
v1,<base64 HMAC-SHA256 of "id.timestamp.body">``), so any of its reference verifiers
accepts it. ``webhook-id`` is the idempotency key, the same on every retry: a receiver
that dedupes on it sees one delivery however often we resend.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import hashlib
import hmac
import ipaddress
import json
import socket
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings

from ..adapters.base_http import MAX_RESPONSE_BYTES, _read_capped, truncate
from ..base import (
    ConnectionConfig,
    GatewayMessage,
    GatewayResult,
    Outcome,
    ParsedReceipt,
    ProbeResult,
    ReceiptRejected,
    ReceiptRequest,
    SecretSource,
)
from ..receipts import json_body, standard_receipt, verify_standard_webhook
from .common import HttpAnswer, ProviderBase, ProviderConfigError

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
# Ours: a configured header never overrides them.
GONE = 410
SIGNED_HEADERS = frozenset({"webhook-id", "webhook-timestamp", "webhook-signature"})


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value (``v1,<base64>``) for one request."""
    key = decode_secret(secret)
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"v1,{base64.b64encode(digest).decode()}"


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a ``whsec_<base64>`` secret."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        # Never echo the value: the message names only what is wrong with it.
        raise ProviderConfigError("signing_secret is not whsec_ followed by base64") from None


class WebhookProvider(ProviderBase):
    name = "webhook"

    def _url(self) -> str:
        # ``url`` is the endpoint itself; ``endpoint_url`` is accepted as its synonym.
        url = str(self.setting("url") or self.setting("endpoint_url") or "")
        if not url:
            raise ProviderConfigError(f"connection {self.config.key!r} (webhook) lacks 'url'")
        return url

    def _configured_headers(self) -> dict[str, str]:
        headers = self.setting("headers") or {}
        if not isinstance(headers, Mapping):
            raise ProviderConfigError(
                f"connection {self.config.key!r} (webhook): 'headers' must be a table"
            )
        return {
            str(name): str(value)
            for name, value in headers.items()
            if str(name).lower() not in SIGNED_HEADERS
        }

    def _signed_headers(self, msg_id: str, body: bytes) -> dict[str, str]:
        timestamp = int(time.time())
        headers = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp)}
        if self.has_secret("signing_secret"):
            # Several space-separated secrets sign side by side (``v1,<new> v1,<old>``),
            # so a receiver keeps verifying while a secret is rotated.
            headers["webhook-signature"] = " ".join(
                sign(secret, msg_id, timestamp, body)
                for secret in self.secret("signing_secret").split()
            )
        return headers

    async def _send(self, message: GatewayMessage, *, timeout_s: float) -> GatewayResult:
        payload: dict[str, Any] = message.payload
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {
            **self._configured_headers(),
            "Content-Type": "application/json",
            "Idempotency-Key": message.idempotency_key,
            "X-Request-ID": message.correlation_id or message.idempotency_key,
            **self._signed_headers(message.idempotency_key, body),
        }
        answer = await self.request("POST", self._url(), content=body, headers=headers)
        data = answer.json_object()
        message_id = data.get("message_id") or data.get("id") or ""
        return answer.status_result(message_id=str(message_id))

    async def _probe(self, *, timeout_s: float) -> ProbeResult:
        """``HEAD`` on the endpoint: any answer but a 5xx shows it is reachable; no body
        is posted, so no receiver acts on it."""
        if self.has_secret("signing_secret"):
            for secret in self.secret("signing_secret").split():
                decode_secret(secret)
        answer = await self.request("HEAD", self._url(), headers=self._configured_headers())
        ok = answer.status < 500
        return ProbeResult(ok, f"HEAD answered HTTP {answer.status}")

    # --- receipts: the receiver reports delivery back, Standard Webhooks-signed -------

    @classmethod
    def receipts_expected(cls, config: ConnectionConfig) -> bool:
        return bool(config.secrets.get("receipt_secret"))

    @classmethod
    def parse_receipt(
        cls, config: ConnectionConfig, request: ReceiptRequest, secrets: SecretSource
    ) -> list[ParsedReceipt]:
        reference = config.secrets.get("receipt_secret")
        if not reference:
            raise ReceiptRejected(f"connection {config.key!r} has no receipt_secret to verify with")
        verify_standard_webhook(secrets.get(reference), request)
        # A client's receiver has no code vocabulary of ours: the settings may name the
        # codes that mean "never reachable" (``permanent_error_codes = ["gone"]``).
        codes = frozenset(str(c) for c in config.settings.get("permanent_error_codes") or ())
        return [standard_receipt(json_body(request), permanent_codes=codes)]


class DestinationRefused(ValueError):
    """A client endpoint's URL that may not be called: not https with DEBUG off, or its
    host resolves to an address inside our own networks. No request was made."""


def address_refusal(address: str, allowed: list[str]) -> str | None:
    """Why ``address`` may not be called (loopback, private, link-local, ...), or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in ipaddress.ip_network(cidr.strip(), strict=False) for cidr in allowed):
        return None
    for kind in ("loopback", "link_local", "private", "multicast", "unspecified", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return f"{ip} is a {kind.replace('_', '-')} address"
    return None


class WebhookEndpointProvider(WebhookProvider):
    """A client's own webhook endpoint (``portal.events``): any public host, so not the
    operators' ``GATEWAY_ALLOWED_HOSTS`` but a check of the address itself.

    At send time the URL's host is resolved and every address it has must be public
    (not loopback, private, link-local, multicast or reserved) unless inside
    ``WEBHOOK_ALLOWED_CIDRS``; the request then goes to that checked address, with the
    URL's host as ``Host`` and as the TLS server name (so the certificate is still
    checked against it), so a DNS answer that changes after the check cannot redirect
    it. A refusal is permanent for the event: the endpoint must be fixed.

    The provider lives for one batch (``GatewaySession`` builds it once per connection
    per batch), and so does its resolution: the batch's deliveries to the endpoint share
    one lookup and one check (the first to ask starts it, the others await it), and each
    goes to that checked address. The next batch resolves afresh.
    """

    name = "webhook_endpoint"

    def __init__(
        self,
        *,
        config: ConnectionConfig,
        client: httpx.AsyncClient | None,
        secrets: SecretSource,
    ) -> None:
        super().__init__(config=config, client=client, secrets=secrets)
        self._resolved: dict[str, asyncio.Future[tuple[str, str, str]]] = {}

    async def request(
        self,
        method: str,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        **kwargs: Any,
    ) -> HttpAnswer:
        pinned, host, sni = await self._pinned(url)
        headers = {**kwargs.pop("headers", {}), "Host": host}
        extensions = {"sni_hostname": sni} if sni else {}
        async with (client or self.client).stream(
            method, pinned, headers=headers, extensions=extensions, **kwargs
        ) as response:
            raw = await _read_capped(response, MAX_RESPONSE_BYTES)
        return HttpAnswer(response.status_code, response.headers, raw)

    async def _pinned(self, url: str) -> tuple[str, str, str]:
        """(the URL with the checked address for its host, the Host header, the TLS name),
        resolved and checked once per URL for this provider's batch."""
        resolving = self._resolved.get(url)
        if resolving is None:
            resolving = asyncio.ensure_future(self._resolve_and_check(url))
            self._resolved[url] = resolving
        # Shielded: one delivery's timeout must not cancel the lookup the others await.
        return await asyncio.shield(resolving)

    async def _resolve_and_check(self, url: str) -> tuple[str, str, str]:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise DestinationRefused("the endpoint URL is not an http(s) URL with a host")
        if scheme != "https" and not settings.DEBUG:
            raise DestinationRefused("the endpoint URL must be https")
        port = parts.port or (443 if scheme == "https" else 80)
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpx.ConnectError(f"cannot resolve {parts.hostname}: {exc}") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        allowed = list(settings.WEBHOOK_ALLOWED_CIDRS)
        for address in addresses:
            refusal = address_refusal(address, allowed)
            if refusal is not None:
                raise DestinationRefused(
                    f"{parts.hostname} resolves to {refusal}; not in WEBHOOK_ALLOWED_CIDRS"
                )
        address = addresses[0]
        literal = f"[{address}]" if ":" in address else address
        pinned = urlunsplit((scheme, f"{literal}:{port}", parts.path, parts.query, ""))
        host = parts.netloc.rsplit("@", 1)[-1]
        return pinned, host, parts.hostname if scheme == "https" else ""

    def _failure(self, exc: Exception, timeout_s: float) -> GatewayResult:
        if isinstance(exc, DestinationRefused):
            return GatewayResult(Outcome.REJECTED_PERMANENT, error=truncate(str(exc), 200))
        return super()._failure(exc, timeout_s)

    async def _send(self, message: GatewayMessage, *, timeout_s: float) -> GatewayResult:
        """Any answer but a 2xx is retried (a client's receiver may be mid-deploy), except
        410 Gone: the endpoint says it no longer exists."""
        result = await super()._send(message, timeout_s=timeout_s)
        if result.outcome is Outcome.REJECTED_PERMANENT and result.status_code != GONE:
            return dataclasses.replace(result, outcome=Outcome.REJECTED_TRANSIENT)
        return result
