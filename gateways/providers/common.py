"""What every provider module shares: construction, secrets at use, the no-raise send.

A provider subclasses ``ProviderBase`` and writes ``_send`` (and ``_probe``): build
the provider's request from the channel's canonical payload, make it, classify the
answer. ``send`` wraps that in the hard timeout and turns any exception into a result,
with every secret value this provider resolved scrubbed from the error text.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from ..adapters.base_http import (
    MAX_RESPONSE_BYTES,
    GatewayPayloadError,
    _read_capped,
    failure_result,
    redact_exception,
    truncate,
)
from ..allowlist import GatewayHostNotAllowed, allowed_hosts, check_url_allowed
from ..base import (
    MESSAGE_ID_MAX_CHARS,
    RESULT_ERROR_CHARS,
    ConnectionConfig,
    GatewayMessage,
    GatewayResult,
    Outcome,
    ProbeResult,
    SecretSource,
)
from ..classify import RETRY_AFTER_STATUSES, classify_status, parse_retry_after

ERROR_SNIPPET_CHARS = 160
REDACTED = "[redacted]"
AMBIGUOUS_NETWORK_ERRORS = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)
# Statuses by which a provider says "these credentials are not (or no longer) good".
AUTH_FAILED_STATUSES = frozenset({401, 403})


class ProviderConfigError(ValueError):
    """The connection lacks a setting or secret this provider needs (our configuration)."""


class ProviderBase:
    """Base of every provider: holds the connection, the shared client and the secrets."""

    name: ClassVar[str] = ""
    # The provider's public API, used when the connection sets no endpoint_url/base_url.
    default_base_url: ClassVar[str] = ""

    def __init__(
        self,
        *,
        config: ConnectionConfig,
        client: httpx.AsyncClient | None,
        secrets: SecretSource,
    ) -> None:
        self.config = config
        self._client = client
        self._secrets = secrets
        self._used_secret_values: set[str] = set()

    @staticmethod
    def needs_http_client(config: ConnectionConfig) -> bool:
        """Whether the session must build its shared HTTP client for this provider
        (``GatewaySession.connection`` asks; SMTP and APNs bring their own transport)."""
        return True

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise ProviderConfigError(f"{self.name} provider was built without an HTTP client")
        return self._client

    # --- settings and secrets -----------------------------------------------------

    def setting(self, key: str, default: Any = None) -> Any:
        return self.config.settings.get(key, default)

    def required_setting(self, key: str) -> Any:
        value = self.config.settings.get(key)
        if value in (None, ""):
            raise ProviderConfigError(
                f"connection {self.config.key!r} ({self.name}) lacks setting {key!r}"
            )
        return value

    def has_secret(self, key: str) -> bool:
        return bool(self.config.secrets.get(key))

    def secret(self, key: str) -> str:
        """The value of the connection's secret ``key``, resolved now (the source caches)."""
        reference = self.config.secrets.get(key)
        if not reference:
            raise ProviderConfigError(
                f"connection {self.config.key!r} ({self.name}) lacks secret {key!r}"
            )
        value = self._secrets.get(reference)
        if value:
            self._used_secret_values.add(value)
        return value

    def invalidate_secrets(self) -> None:
        """The provider refused our credentials: the next ``secret()`` reads them afresh."""
        for reference in self.config.secrets.values():
            self._secrets.invalidate(reference)

    def base_url(self) -> str:
        """The connection's ``endpoint_url``/``base_url`` or the provider's public API,
        checked against ``GATEWAY_ALLOWED_HOSTS``."""
        url = str(
            self.setting("endpoint_url") or self.setting("base_url") or self.default_base_url
        ).rstrip("/")
        check_url_allowed(url)
        return url

    # --- the no-raise wrappers ------------------------------------------------------

    async def send(self, message: GatewayMessage, *, timeout_s: float) -> GatewayResult:
        try:
            async with asyncio.timeout(timeout_s):
                result = await self._send(message, timeout_s=timeout_s)
        except Exception as exc:
            result = self._failure(exc, timeout_s)
        if result.auth_failed:
            self.invalidate_secrets()
        return self._scrubbed(result)

    async def probe(self, *, timeout_s: float) -> ProbeResult:
        try:
            async with asyncio.timeout(timeout_s):
                probe = await self._probe(timeout_s=timeout_s)
        except Exception as exc:
            probe = ProbeResult(False, self._failure(exc, timeout_s).error)
        return ProbeResult(probe.ok, self.scrub(probe.detail))

    async def aclose(self) -> None:
        """The shared client belongs to the session that made it; nothing of ours is open."""

    async def _send(self, message: GatewayMessage, *, timeout_s: float) -> GatewayResult:
        raise NotImplementedError

    async def _probe(self, *, timeout_s: float) -> ProbeResult:
        """Authenticate and reach the provider without sending a message; a probe that
        sees 401/403 calls ``invalidate_secrets`` itself."""
        raise NotImplementedError

    def _failure(self, exc: Exception, timeout_s: float) -> GatewayResult:
        if isinstance(exc, ProviderConfigError | GatewayPayloadError | GatewayHostNotAllowed):
            return GatewayResult(
                Outcome.EXECUTOR_ERROR, error=truncate(str(exc), RESULT_ERROR_CHARS)
            )
        if isinstance(exc, AMBIGUOUS_NETWORK_ERRORS):
            # The request may have reached the provider, and most providers take no
            # idempotency key: the outcome is unknown, like a timeout (an at_most_once
            # target must not resend it). A connect error, by contrast, sent nothing.
            return GatewayResult(
                Outcome.TIMEOUT,
                error=truncate(
                    f"outcome unknown, connection lost: {redact_exception(exc)}", RESULT_ERROR_CHARS
                ),
            )
        return failure_result(exc, timeout_s)

    def scrub(self, text: str) -> str:
        """``text`` without any secret value this provider resolved, nor the start of one
        cut off where the text was truncated."""
        values = sorted(
            # a 1-3 character "secret" would blank half the message
            (v for v in self._used_secret_values if len(v) >= 4),
            key=len,
            reverse=True,
        )
        for value in values:
            text = text.replace(value, REDACTED)
        cut = text.endswith("…")
        body = text.removesuffix("…")
        for value in values:
            for n in range(min(len(value), len(body)), 3, -1):
                if body.endswith(value[:n]):
                    body = body[:-n] + REDACTED
                    break
        return body + ("…" if cut else "")

    def _scrubbed(self, result: GatewayResult) -> GatewayResult:
        error = self.scrub(result.error)
        if error == result.error:
            return result
        return GatewayResult(
            result.outcome,
            status_code=result.status_code,
            message_id=result.message_id,
            retry_after_s=result.retry_after_s,
            error=error,
            suppress_recipient=result.suppress_recipient,
            auth_failed=result.auth_failed,
            provider_code=result.provider_code,
        )

    # --- HTTP helpers ---------------------------------------------------------------

    async def request(
        self,
        method: str,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        **kwargs: Any,
    ) -> HttpAnswer:
        """One request to an allowed URL; the answer's body read up to a cap."""
        check_url_allowed(url)
        async with (client or self.client).stream(method, url, **kwargs) as response:
            raw = await _read_capped(response, MAX_RESPONSE_BYTES)
        return HttpAnswer(response.status_code, response.headers, raw)


class HttpAnswer:
    """A provider's HTTP answer, its body capped."""

    __slots__ = ("headers", "raw", "status")

    def __init__(self, status: int, headers: httpx.Headers, raw: bytes) -> None:
        self.status = status
        self.headers = headers
        self.raw = raw

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object, or {} when it is not one."""
        try:
            data = json.loads(self.raw) if self.raw else None
        except (ValueError, UnicodeDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def text_snippet(self) -> str:
        return truncate(self.raw.decode("utf-8", errors="replace"), ERROR_SNIPPET_CHARS)

    def retry_after(self) -> float | None:
        if self.status not in RETRY_AFTER_STATUSES:
            return None
        return parse_retry_after(self.headers.get("Retry-After"))

    def status_result(
        self,
        *,
        message_id: str = "",
        provider_code: str = "",
        detail: str = "",
    ) -> GatewayResult:
        """The result of this answer judged by its HTTP status alone.

        401/403 refuse our credentials, not the message: transient, so that the next
        attempt (after the secrets are re-read) may succeed or fail over to another
        connection, instead of the intent failing for good.
        """
        auth_failed = self.status in AUTH_FAILED_STATUSES
        outcome = Outcome.REJECTED_TRANSIENT if auth_failed else classify_status(self.status)
        error = ""
        if outcome is not Outcome.ACCEPTED:
            text = detail or self.text_snippet()
            error = f"HTTP {self.status}: {text}" if text else f"HTTP {self.status}"
        return GatewayResult(
            outcome,
            status_code=self.status,
            message_id=message_id[:MESSAGE_ID_MAX_CHARS],
            retry_after_s=self.retry_after(),
            error=truncate(error, RESULT_ERROR_CHARS),
            auth_failed=auth_failed,
            provider_code=provider_code[:64],
        )


def check_host_allowed(host: str) -> None:
    """The allow-list for a provider that speaks no HTTP (SMTP): the bare host name."""
    if not host or host.strip().lower().strip("[]") not in allowed_hosts():
        raise GatewayHostNotAllowed(f"host {host or '(none)'} not in GATEWAY_ALLOWED_HOSTS")


def result(
    outcome: Outcome,
    *,
    status_code: int | None = None,
    message_id: str = "",
    retry_after_s: float | None = None,
    error: str = "",
    suppress: bool = False,
    auth_failed: bool = False,
    provider_code: str | int = "",
) -> GatewayResult:
    """A ``GatewayResult`` with the error on one short line and the id fitted to its column."""
    return GatewayResult(
        outcome,
        status_code=status_code,
        message_id=message_id[:MESSAGE_ID_MAX_CHARS],
        retry_after_s=retry_after_s,
        error=truncate(error, RESULT_ERROR_CHARS) if error else "",
        suppress_recipient=suppress,
        auth_failed=auth_failed,
        provider_code=str(provider_code)[:64],
    )


def require_fields(payload: Mapping[str, Any], channel: str, *fields: str) -> None:
    """The canonical payload has each of ``fields``, non-empty (else our contract broke)."""
    missing = [field for field in fields if payload.get(field) in (None, "", [])]
    if missing:
        raise GatewayPayloadError(f"{channel} payload lacks {', '.join(missing)}")
