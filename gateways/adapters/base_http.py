"""The HTTP adapter every gateway module builds on.

An adapter owns no policy: it sends one message, bounds the attempt by a hard
timeout, and translates whatever happened into a ``GatewayResult``. ``send`` never
raises (cancellation aside): every failure becomes an outcome the engine records.

``query_status`` asks the gateway whether it accepted a message with a given
idempotency key (for reconciliation after a timeout), under the same allow-list, hard
timeout and no-raise rule: ``GET <status URL>/<key>`` answering 200
``{"status": "accepted", "message_id", ...}`` is an acceptance, 404 means the gateway
has no record of the key.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import ssl
from typing import Any, ClassVar
from urllib.parse import quote

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


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process: httpx builds a new one per client (~26 ms,
    loading the CA bundle), and a session, so a client, is opened per batch."""
    return ssl.create_default_context()


# Connections per pool of the sharded transport (see ``ShardedTransport``).
POOL_SHARD_CONNECTIONS = 16


class ShardedTransport(httpx.AsyncBaseTransport):
    """Several small connection pools behind one transport, requests dealt round-robin.

    httpcore's pool re-examines every connection it holds, and for each idle one counts
    them all again, whenever a request starts or ends: quadratic in the pool's size. A
    batch sends ~100 requests at once, so one pool of 100 connections spent more CPU
    deciding which connection to use (about 2.5 ms per message, measured) than sending.
    Pools of ``POOL_SHARD_CONNECTIONS`` keep each such pass short, with the same total
    of connections.
    """

    def __init__(self, *, max_connections: int, verify: ssl.SSLContext) -> None:
        shards = max(1, -(-max_connections // POOL_SHARD_CONNECTIONS))
        per_shard = -(-max_connections // shards)
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        self._pools = [
            httpx.AsyncHTTPTransport(verify=verify, trust_env=False, limits=limits)
            for _ in range(shards)
        ]
        self._next = itertools.cycle(self._pools)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await next(self._next).handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


def new_http_client(*, max_connections: int = 200) -> httpx.AsyncClient:
    """A pooled client for gateway calls (``max_connections`` over sharded pools).

    ``trust_env=False``: no proxy or netrc from the environment may reroute or
    authenticate our calls. Redirects are not followed: a redirect could leave the
    allow-list.
    """
    return httpx.AsyncClient(
        transport=ShardedTransport(max_connections=max_connections, verify=_tls_context()),
        timeout=BACKSTOP_TIMEOUT,
        trust_env=False,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    )


class HttpGatewayBase:
    """Posts a JSON body built from the payload to the URL in ``url_setting``.

    Subclasses set ``name``, ``url_setting`` and ``status_url_setting`` and say which
    body they send. An empty status URL means the gateway cannot be asked about a key.
    """

    name: str = ""
    url_setting: ClassVar[str] = ""
    status_url_setting: ClassVar[str] = ""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        url: str | None = None,
        status_url: str | None = None,
        name: str | None = None,
    ) -> None:
        if name:
            self.name = name  # the registry may mount an adapter under another name
        self.url = url if url is not None else getattr(settings, self.url_setting)
        if status_url is None and self.status_url_setting:
            status_url = getattr(settings, self.status_url_setting, "")
        self.status_url = status_url or ""
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
        except Exception as exc:
            return failure_result(exc, timeout_s)

    async def _post(self, body: dict[str, Any], headers: dict[str, str]) -> GatewayResult:
        async with self._client.stream("POST", self.url, json=body, headers=headers) as response:
            raw = await _read_capped(response, MAX_RESPONSE_BYTES)
        return result_from_response(response.status_code, response.headers, raw)

    @property
    def can_query_status(self) -> bool:
        """Whether a status URL is configured; reconciliation asks only such gateways."""
        return bool(self.status_url)

    async def query_status(
        self, idempotency_key: str, *, timeout_s: float, request_id: str = ""
    ) -> GatewayResult | None:
        """Did the gateway accept a message sent with ``idempotency_key``?

        An accepted result with the gateway's message id, or None when the gateway has
        no record of the key (404). Never raises (cancellation aside): a refused host, a
        timeout or any other answer is a result whose outcome is not ``accepted``.
        """
        try:
            if not self.status_url:
                raise GatewayStatusUnavailable(
                    f"no status URL configured for the {self.name!r} gateway "
                    f"({self.status_url_setting or 'status_url'} is empty)"
                )
            url = f"{self.status_url.rstrip('/')}/{quote(idempotency_key, safe='')}"
            check_url_allowed(url)
            headers = {
                "Accept": "application/json",
                "X-Request-ID": request_id or idempotency_key,
            }
            async with asyncio.timeout(timeout_s):
                async with self._client.stream("GET", url, headers=headers) as response:
                    raw = await _read_capped(response, MAX_RESPONSE_BYTES)
        except Exception as exc:
            return failure_result(exc, timeout_s)
        return status_from_response(idempotency_key, response.status_code, response.headers, raw)


class GatewayStatusUnavailable(RuntimeError):
    """This adapter has no status URL: the gateway cannot be asked about a key."""


def failure_result(exc: Exception, timeout_s: float) -> GatewayResult:
    """The result of a gateway call that raised instead of answering."""
    if isinstance(exc, GatewayHostNotAllowed | GatewayStatusUnavailable):
        return GatewayResult(Outcome.EXECUTOR_ERROR, error=str(exc))
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return GatewayResult(Outcome.TIMEOUT, error=f"no answer within {timeout_s:g} s")
    if isinstance(exc, httpx.LocalProtocolError):  # we built an invalid request: our fault
        return GatewayResult(Outcome.EXECUTOR_ERROR, error=redact_exception(exc))
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError | httpx.ProxyError):
        # The gateway may or may not have seen the request; the idempotency key
        # makes the retry safe either way.
        return GatewayResult(Outcome.REJECTED_TRANSIENT, error=redact_exception(exc))
    # Our own bug or configuration, never the gateway's.
    return GatewayResult(Outcome.EXECUTOR_ERROR, error=redact_exception(exc))


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


def status_from_response(
    idempotency_key: str, status: int, headers: httpx.Headers, raw: bytes
) -> GatewayResult | None:
    """Translate a gateway's answer to a status lookup: only an explicit acceptance of
    this very key counts, so a misrouted 200 (a web page, another key) confirms nothing."""
    if status == 404:
        return None
    if not 200 <= status < 300:
        return result_from_response(status, headers, raw)
    data = _json_object(raw)
    said = data.get("status") if data is not None else None
    answered_key = data.get("idempotency_key", idempotency_key) if data is not None else None
    if said == "accepted" and answered_key == idempotency_key:
        return GatewayResult(
            Outcome.ACCEPTED, status_code=status, message_id=_message_id(raw, headers)
        )
    if said == "accepted":
        error = f"HTTP {status}: the answer is about another idempotency key"
    else:
        snippet = truncate(raw.decode("utf-8", errors="replace"), BODY_SNIPPET_CHARS)
        error = f"HTTP {status} without an acceptance: {snippet or '(empty body)'}"
    return GatewayResult(Outcome.REJECTED_TRANSIENT, status_code=status, error=error)


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _message_id(raw: bytes, headers: httpx.Headers) -> str:
    data = _json_object(raw)
    if data is not None:
        for field in ("message_id", "id"):
            value = data.get(field)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)[:128]  # the column is 128 wide
    header: str = headers.get("X-Message-ID", "")
    return header[:128]
