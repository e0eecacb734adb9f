"""The HTTP adapter every gateway module builds on.

An adapter owns no policy: it sends one message, bounds the attempt by a hard
timeout, and translates whatever happened into a ``GatewayResult``. ``send`` never
raises (cancellation aside): every failure becomes an outcome the engine records.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

import httpx
from django.conf import settings

from ..allowlist import GatewayHostNotAllowed, check_url_allowed
from ..base import GatewayMessage, GatewayResult, Outcome
from ..classify import RETRY_AFTER_STATUSES, classify_status, parse_retry_after

USER_AGENT = "submission-portal/0.1"
ERROR_MAX_CHARS = 200
BODY_SNIPPET_CHARS = 120
# We only read a response to find a message id or an error snippet: never hold more.
MAX_RESPONSE_BYTES = 64 * 1024
# httpx's own timeouts apply per phase (connect, each read...), so a slow trickle can
# outlive them; asyncio.timeout in ``send`` is the real bound. This is only a backstop
# for a client used outside ``send``.
BACKSTOP_TIMEOUT = httpx.Timeout(60.0)


class GatewayPayloadError(ValueError):
    """The payload lacks what this gateway needs: a contract/adapter mismatch (our fault)."""


def redact_exception(exc: BaseException) -> str:
    """Exception class and message, short: enough to diagnose, too short to leak much."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return truncate(text, ERROR_MAX_CHARS)


def truncate(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    text = " ".join(text.split())  # one line, whatever the gateway sent
    return text if len(text) <= limit else text[: limit - 1] + "…"


def new_http_client(*, max_connections: int = 200) -> httpx.AsyncClient:
    """A pooled client for gateway calls.

    ``trust_env=False``: no proxy or netrc from the environment may reroute or
    authenticate our calls. Redirects are not followed: a redirect could leave the
    allow-list.
    """
    return httpx.AsyncClient(
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        timeout=BACKSTOP_TIMEOUT,
        trust_env=False,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    )


class HttpGatewayBase:
    """Posts a JSON body built from the payload to the URL in ``url_setting``.

    Subclasses set ``name`` and ``url_setting`` and say which body they send.
    """

    name: str = ""
    url_setting: ClassVar[str] = ""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        url: str | None = None,
        name: str | None = None,
    ) -> None:
        if name:
            self.name = name  # the registry may mount an adapter under another name
        self.url = url if url is not None else getattr(settings, self.url_setting)
        self._owns_client = client is None
        self._client = client if client is not None else new_http_client()

    def build_body(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The JSON body for the gateway, from the intent's payload."""
        raise NotImplementedError

    async def aclose(self) -> None:
        if self._owns_client:  # a shared client belongs to the session that made it
            await self._client.aclose()

    async def send(self, message: GatewayMessage, *, timeout_s: float) -> GatewayResult:
        try:
            check_url_allowed(self.url)
            body = self.build_body(message.payload)
            headers = {
                "Idempotency-Key": message.idempotency_key,
                "X-Request-ID": message.correlation_id or message.idempotency_key,
            }
            async with asyncio.timeout(timeout_s):
                return await self._post(body, headers)
        except GatewayHostNotAllowed as exc:
            return GatewayResult(Outcome.EXECUTOR_ERROR, error=str(exc))
        except (TimeoutError, httpx.TimeoutException):
            return GatewayResult(Outcome.TIMEOUT, error=f"no answer within {timeout_s:g} s")
        except httpx.LocalProtocolError as exc:  # we built an invalid request: our fault
            return GatewayResult(Outcome.EXECUTOR_ERROR, error=redact_exception(exc))
        except (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError) as exc:
            # The gateway may or may not have seen the request; the idempotency key
            # makes the retry safe either way.
            return GatewayResult(Outcome.REJECTED_TRANSIENT, error=redact_exception(exc))
        except Exception as exc:  # our own bug or configuration, never the gateway's
            return GatewayResult(Outcome.EXECUTOR_ERROR, error=redact_exception(exc))

    async def _post(self, body: dict[str, Any], headers: dict[str, str]) -> GatewayResult:
        async with self._client.stream("POST", self.url, json=body, headers=headers) as response:
            raw = await _read_capped(response, MAX_RESPONSE_BYTES)
        return result_from_response(response.status_code, response.headers, raw)


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break  # leaving the stream context closes the connection
    return b"".join(chunks)[:limit]


def result_from_response(status: int, headers: httpx.Headers, raw: bytes) -> GatewayResult:
    """Translate a gateway's HTTP answer into a result."""
    outcome = classify_status(status)
    retry_after = (
        parse_retry_after(headers.get("Retry-After")) if status in RETRY_AFTER_STATUSES else None
    )
    error = ""
    if outcome is not Outcome.ACCEPTED:
        snippet = truncate(raw.decode("utf-8", errors="replace"), BODY_SNIPPET_CHARS)
        error = f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}"
        if 300 <= status < 400:
            error = f"HTTP {status}: redirect not followed; check the gateway URL setting"
    return GatewayResult(
        outcome,
        status_code=status,
        message_id=_message_id(raw, headers),
        retry_after_s=retry_after,
        error=error,
    )


def _message_id(raw: bytes, headers: httpx.Headers) -> str:
    try:
        data = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict):
        for field in ("message_id", "id"):
            value = data.get(field)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)[:128]  # the column is 128 wide
    return headers.get("X-Message-ID", "")[:128]
