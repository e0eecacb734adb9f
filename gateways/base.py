"""The gateway protocol: adapters take a message and a timeout and return a result.

Gateways know nothing about intents. The delivery engine turns a ``GatewayResult``
into an attempt row and the intent's next state.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any, Protocol

# The widest a result's provider message id and error may be (the columns that store them,
# Intent.gateway_message_id and Attempt.error, are at least this wide).
MESSAGE_ID_MAX_CHARS = 128
RESULT_ERROR_CHARS = 200


class Outcome(enum.StrEnum):
    """How one attempt ended. The values are the attempt outcomes of CONTRACT.md."""

    ACCEPTED = "accepted"
    REJECTED_PERMANENT = "rejected_permanent"
    REJECTED_TRANSIENT = "rejected_transient"
    TIMEOUT = "timeout"
    EXECUTOR_ERROR = "executor_error"


@dataclasses.dataclass(frozen=True, slots=True)
class GatewayMessage:
    idempotency_key: str  # the intent's public id: a retry can never deliver twice
    correlation_id: str  # sent as X-Request-ID
    payload: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class GatewayResult:
    outcome: Outcome
    status_code: int | None = None
    message_id: str = ""  # at most MESSAGE_ID_MAX_CHARS
    retry_after_s: float | None = None
    error: str = ""  # redacted, at most RESULT_ERROR_CHARS: never the payload or a credential
    # The provider's documented code says this recipient can never be reached on this
    # channel (invalid number, STOP, unregistered token, hard bounce): suppress it.
    suppress_recipient: bool = False
    # The provider refused our credentials (401/403): re-read the secrets before the next try.
    auth_failed: bool = False
    provider_code: str = ""  # the provider's own error code, when it gave one


class Gateway(Protocol):
    """One outbound channel. ``send`` never raises: every failure is a result."""

    name: str

    async def send(self, message: GatewayMessage, *, timeout_s: float) -> GatewayResult: ...

    async def aclose(self) -> None: ...


# --- v1.1: connections and providers ------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class ConnectionConfig:
    """One configured way out, as a provider sees it (built from a connection file/row).

    ``secrets`` holds references (``env:NAME``, ``file:/path``,
    ``aws-secretsmanager:<id>[#<json key>]``), never values; a provider asks a
    ``SecretSource`` for the value at use.
    """

    key: str  # "sns-main"
    provider: str  # "sns", "twilio", "simulator", ...
    channel: str  # sms | email | push | http | ops
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    secrets: Mapping[str, str] = dataclasses.field(default_factory=dict)


class SecretSource(Protocol):
    """Resolves secret references; values are cached with a TTL and never logged."""

    def get(self, reference: str) -> str: ...

    def invalidate(self, reference: str) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class ProbeResult:
    """``check_connections``: could we authenticate and reach the provider (no message sent)?"""

    ok: bool
    detail: str = ""  # one line, redacted


class Provider(Protocol):
    """One provider behind a connection. ``send`` never raises: every failure is a result.

    Built per batch by ``GatewaySession.connection(config)`` as
    ``ProviderClass(config=..., client=<shared httpx.AsyncClient>, secrets=<SecretSource>)``.
    """

    name: str  # the provider key

    async def send(self, message: GatewayMessage, *, timeout_s: float) -> GatewayResult: ...

    async def probe(self, *, timeout_s: float) -> ProbeResult: ...

    async def aclose(self) -> None: ...


# --- v1.1: delivery receipts --------------------------------------------------------

RECEIPT_STATUSES = ("sent", "delivered", "undelivered")


class ReceiptRejected(Exception):
    """A receipt that failed its provider's signature check (or could not be read at
    all): answered 401, nothing stored. The message is for the security log: it names
    what was wrong, never a secret or the body."""


class ReceiptInvalid(ValueError):
    """A correctly signed receipt we cannot read (a field missing or malformed): 400."""


@dataclasses.dataclass(frozen=True, slots=True)
class ParsedReceipt:
    """One status report a provider sent about one message, verified and normalised."""

    message_id: str  # the provider's id, as its send answer gave it
    status: str  # one of RECEIPT_STATUSES
    provider_status: str = ""  # the provider's own word ("delivered", "DELIVRD", "failed")
    error_code: str = ""  # the provider's error code, when it gave one
    occurred_at: Any = None  # aware datetime on the provider's clock, or None
    permanent: bool = False  # the code says this recipient can never be reached
    # The recipients the report is about, where the provider names them (an email to
    # several addresses can bounce for one): only these are suppressed. Empty: all.
    recipients: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class ReceiptRequest:
    """What the receipts view hands a provider: the raw request, nothing interpreted."""

    url: str  # the full URL the provider called (Twilio signs it)
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    form: Mapping[str, str]  # the url-encoded body's fields, {} for JSON


class ReceiptParser(Protocol):
    """Implemented (as classmethods) by providers whose connections send receipts.

    ``parse_receipt`` checks the provider's signature with the connection's secret and
    returns the receipts the request holds; it raises ``ReceiptRejected`` on a bad
    signature. ``receipts_expected`` says whether this connection is set up to send any
    (if not, an accepted message's delivery status is ``unknown``).
    """

    @classmethod
    def parse_receipt(
        cls, config: ConnectionConfig, request: ReceiptRequest, secrets: SecretSource
    ) -> list[ParsedReceipt]: ...

    @classmethod
    def receipts_expected(cls, config: ConnectionConfig) -> bool: ...
