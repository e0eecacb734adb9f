"""Email over SMTP with aiosmtplib: STARTTLS, implicit TLS or none, AUTH when configured.

The canonical email payload becomes one MIME message (text and/or HTML alternatives);
``bcc`` goes only into the envelope. Each message gets ``Message-ID:
<idempotency key@sender domain>``: SMTP has no idempotency key, but a resend carries
the same Message-ID, which many receiving systems and every threading client use to
fold duplicates (a resend after an ambiguous outcome can still arrive twice).

Reply codes decide the outcome: 2xx accepted, 4xx transient, 5xx permanent; a
recipient refused with 550/551/553 (or enhanced status 5.1.x) is suppressed, since the
mailbox does not exist or is not ours to reach.
"""

from __future__ import annotations

import asyncio
import email.policy
import email.utils
import functools
import re
import ssl
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx

from ..adapters.base_http import GatewayPayloadError
from ..base import (
    ConnectionConfig,
    GatewayMessage,
    GatewayResult,
    Outcome,
    ProbeResult,
    SecretSource,
)
from .common import ProviderBase, ProviderConfigError, check_host_allowed, require_fields, result
from .smtp_wire import RESERVED_HEADERS, plain_message

# aiosmtplib bounds each command by a share of the hard timeout, so a silent server is
# reported by the phase it went silent in (before or after the message left) rather
# than by the hard timeout, which cannot tell.
COMMAND_SHARE = 0.8
DEFAULT_MAX_CONNECTIONS = 4
SECURITY_MODES = {"starttls": 587, "tls": 465, "none": 25}
SUPPRESSING_CODES = frozenset({550, 551, 553})
ENHANCED_STATUS = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")


def addresses(value: Any, field: str) -> list[str]:
    """A payload's address field (one address or a list) as a list."""
    if value in (None, "", []):
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value)
    raise GatewayPayloadError(f"email {field} must be an address or a list of addresses")


def build_email(
    payload: Mapping[str, Any], *, sender: str, message_id: str
) -> tuple[EmailMessage, list[str]]:
    """The MIME message and the envelope recipients of one canonical email payload."""
    require_fields(payload, "email", "to", "subject")
    if not payload.get("text") and not payload.get("html"):
        raise GatewayPayloadError("email payload lacks text or html")
    to = addresses(payload["to"], "to")
    cc = addresses(payload.get("cc"), "cc")
    bcc = addresses(payload.get("bcc"), "bcc")
    reply_to = addresses(payload.get("reply_to"), "reply_to")
    mail = EmailMessage()
    mail["From"] = _parsed_header("From", sender)
    mail["To"] = ", ".join(to)
    if cc:
        mail["Cc"] = ", ".join(cc)
    if reply_to:
        mail["Reply-To"] = ", ".join(reply_to)
    mail["Subject"] = str(payload["subject"])
    mail["Message-ID"] = message_id
    mail["Date"] = _parsed_header("Date", email.utils.formatdate(localtime=False))
    extra = payload.get("headers") or {}
    if not isinstance(extra, Mapping):
        raise GatewayPayloadError("email headers must be an object")
    for name, value in extra.items():
        if str(name).lower() in RESERVED_HEADERS:
            raise GatewayPayloadError(f"email header {name!r} is set from the payload's fields")
        mail[str(name)] = str(value)
    if payload.get("text"):
        mail.set_content(str(payload["text"]))
        if payload.get("html"):
            mail.add_alternative(str(payload["html"]), subtype="html")
    else:
        mail.set_content(str(payload["html"]), subtype="html")
    return mail, to + cc + bcc


@functools.lru_cache(maxsize=256)
def _parsed_header(name: str, value: str) -> Any:
    """A header parsed once per value: headers are immutable, and parsing them is most
    of the cost of building a message. For values that repeat: the connection's sender,
    the ``Date`` of the current second."""
    return email.policy.default.header_factory(name, value)


@functools.lru_cache(maxsize=64)
def _sender_domain(sender: str) -> str:
    return email.utils.parseaddr(sender)[1].rpartition("@")[2] or "submission-portal"


@functools.lru_cache(maxsize=64)
def envelope_sender(sender: str) -> str:
    """The bare address of the ``from`` setting, for ``MAIL FROM``."""
    return email.utils.parseaddr(sender)[1] or sender


def message_id_for(idempotency_key: str, sender: str) -> str:
    domain = _sender_domain(sender)
    local = re.sub(r"[^A-Za-z0-9.\-_+]", "-", idempotency_key)
    return f"<{local}@{domain}>"


def outcome_of_code(code: int) -> Outcome:
    if 200 <= code < 300:
        return Outcome.ACCEPTED
    if 400 <= code < 500:
        return Outcome.REJECTED_TRANSIENT
    if 500 <= code < 600:
        return Outcome.REJECTED_PERMANENT
    return Outcome.REJECTED_TRANSIENT  # not an SMTP reply: a confused peer


def recipient_is_unreachable(code: int, text: str) -> bool:
    """The reply says the mailbox does not exist or may not be used (suppress it)."""
    enhanced = ENHANCED_STATUS.match(text)
    if enhanced:
        return enhanced.group(1) == "5" and enhanced.group(2) == "1"
    return code in SUPPRESSING_CODES


async def _greet_once(smtp: aiosmtplib.SMTP) -> None:
    """EHLO, or HELO from a server that refuses EHLO, unless this session has greeted:
    what ``send_message`` does first, through aiosmtplib's public calls."""
    if not smtp.is_ehlo_or_helo_needed:
        return
    try:
        await smtp.ehlo()
    except aiosmtplib.SMTPHeloError:
        if not smtp.is_connected:
            raise
        await smtp.helo()


async def _transaction(
    smtp: aiosmtplib.SMTP,
    mail: EmailMessage | bytes,
    *,
    sender: str,
    recipients: list[str],
    timeout: float,
) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
    """MAIL, RCPT, DATA. Wire bytes from ``plain_message`` go as ``send_message`` would
    send them: it only asks for ``BODY=8BITMIME`` when the server offers it (their
    addresses never need SMTPUTF8)."""
    if isinstance(mail, EmailMessage):
        return await smtp.send_message(mail, sender=sender, recipients=recipients, timeout=timeout)
    await _greet_once(smtp)  # as send_message does, for the extensions
    options = ["BODY=8BITMIME"] if smtp.supports_extension("8BITMIME") else []
    return await smtp.sendmail(sender, recipients, mail, mail_options=options, timeout=timeout)


def _accepted(message_id: str, refused: dict[str, aiosmtplib.SMTPResponse]) -> GatewayResult:
    """Delivered; when some recipients refused it while others took it, they are named."""
    error = ""
    if refused:
        error = "refused: " + ", ".join(
            f"{address} ({response.code})" for address, response in refused.items()
        )
    return result(
        Outcome.ACCEPTED,
        message_id=message_id,
        error=error,
        provider_code="partial" if refused else "",
    )


def _connection_failed(exc: Exception, *, sending: bool) -> GatewayResult:
    """A timeout, a disconnect or a TLS failure: once sending, the server may have queued
    the message before the line went quiet; before, nothing was sent."""
    if sending:
        return result(
            Outcome.TIMEOUT,
            error=f"outcome unknown: SMTP {type(exc).__name__} while sending: {exc}",
        )
    return result(
        Outcome.REJECTED_TRANSIENT,
        error=f"SMTP {type(exc).__name__} before sending (nothing sent): {exc}",
    )


class SmtpProvider(ProviderBase):
    name = "smtp"

    def __init__(
        self, *, config: ConnectionConfig, client: httpx.AsyncClient | None, secrets: SecretSource
    ) -> None:
        super().__init__(config=config, client=client, secrets=secrets)
        self._idle: list[aiosmtplib.SMTP] = []  # sessions of this batch, ready for a message
        self._semaphore: asyncio.Semaphore | None = None

    @staticmethod
    def needs_http_client(config: ConnectionConfig) -> bool:
        return False  # SMTP is not HTTP

    def _security(self) -> str:
        security = str(self.setting("security", "starttls")).lower()
        if security not in SECURITY_MODES:
            raise ProviderConfigError(
                f"connection {self.config.key!r} (smtp): security {security!r} is not one of "
                f"{', '.join(SECURITY_MODES)}"
            )
        return security

    def _tls_context(self) -> ssl.SSLContext:
        """Verifying, against the system CAs or the connection's ``ca_file``."""
        ca_file = self.setting("ca_file")
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)

    def _smtp_client(self, timeout_s: float) -> aiosmtplib.SMTP:
        host = str(self.required_setting("host"))
        check_host_allowed(host)
        security = self._security()
        port = int(self.setting("port") or SECURITY_MODES[security])
        username = self.secret("username") if self.has_secret("username") else None
        password = self.secret("password") if self.has_secret("password") else None
        return aiosmtplib.SMTP(
            hostname=host,
            port=port,
            username=username,
            password=password,
            use_tls=security == "tls",
            start_tls=security == "starttls",  # required when chosen, never opportunistic
            tls_context=self._tls_context() if security != "none" else None,
            timeout=timeout_s,
        )

    async def _send(self, message: GatewayMessage, *, timeout_s: float) -> GatewayResult:
        sender = str(self.required_setting("from"))
        message_id = message_id_for(message.idempotency_key, sender)
        mail: EmailMessage | bytes
        plain = plain_message(
            message.payload,
            sender=sender,
            envelope_sender=envelope_sender(sender),
            message_id=message_id,
        )
        if plain is not None:  # the same bytes, without the email package's CPU
            mail, recipients = plain
        else:
            mail, recipients = build_email(message.payload, sender=sender, message_id=message_id)
        async with self._slots():
            return await self._deliver(
                mail, envelope_sender(sender), recipients, timeout_s, message_id=message_id
            )

    def _slots(self) -> asyncio.Semaphore:
        """At most ``max_connections`` SMTP sessions at once: a batch sends its messages
        concurrently, and servers refuse a client that opens too many."""
        if self._semaphore is None:
            limit = int(self.setting("max_connections") or DEFAULT_MAX_CONNECTIONS)
            self._semaphore = asyncio.Semaphore(max(limit, 1))
        return self._semaphore

    async def _deliver(
        self,
        mail: EmailMessage | bytes,
        sender: str,
        recipients: list[str],
        timeout_s: float,
        *,
        message_id: str,
    ) -> GatewayResult:
        """One message on an idle session of this batch, or on a new one."""
        command_timeout = COMMAND_SHARE * timeout_s
        smtp = self._idle.pop() if self._idle else None
        sending = False  # until MAIL FROM, nothing of the message has left
        reusable = False  # only a session that finished its transaction goes back
        try:
            if smtp is None or not smtp.is_connected:
                smtp = self._smtp_client(command_timeout)
                await smtp.connect()  # EHLO, STARTTLS or TLS, AUTH
            sending = True
            refused, _reply = await _transaction(
                smtp, mail, sender=sender, recipients=recipients, timeout=command_timeout
            )
            reusable = True
        except aiosmtplib.SMTPRecipientsRefused as exc:  # every recipient refused
            reusable = True  # aiosmtplib reset the envelope (RSET)
            return self._recipients_refused(exc.recipients)
        except aiosmtplib.SMTPAuthenticationError as exc:
            return result(
                Outcome.REJECTED_TRANSIENT,
                error=f"SMTP {exc.code}: authentication refused",
                auth_failed=True,
                provider_code=exc.code,
            )
        except aiosmtplib.SMTPNotSupported as exc:
            return result(Outcome.EXECUTOR_ERROR, error=f"SMTP: {exc}")
        except aiosmtplib.SMTPResponseException as exc:  # sender or data refused, HELO …
            reusable = sending  # a refusal in the transaction was followed by RSET
            return result(
                outcome_of_code(exc.code),
                error=f"SMTP {exc.code}: {exc.message}",
                provider_code=exc.code,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:  # timeouts, disconnects, TLS
            return _connection_failed(exc, sending=sending)
        finally:
            # Also on cancellation (the hard timeout): a session left mid-command is
            # closed, never reused.
            if smtp is not None:
                self._release(smtp, reusable=reusable)
        return _accepted(message_id, refused)

    def _release(self, smtp: aiosmtplib.SMTP, *, reusable: bool) -> None:
        """Back to the idle sessions of this batch, or closed."""
        if reusable and smtp.is_connected:
            self._idle.append(smtp)
        else:
            smtp.close()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for smtp in idle:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()

    def _recipients_refused(
        self, refusals: Sequence[aiosmtplib.SMTPRecipientRefused]
    ) -> GatewayResult:
        codes = [refusal.code for refusal in refusals]
        transient = any(400 <= code < 500 for code in codes)
        suppress = not transient and all(
            recipient_is_unreachable(r.code, r.message) for r in refusals
        )
        first = refusals[0]
        return result(
            Outcome.REJECTED_TRANSIENT if transient else outcome_of_code(first.code),
            error=f"SMTP {first.code}: {first.message}",
            suppress=suppress,
            provider_code=first.code,
        )

    async def _probe(self, *, timeout_s: float) -> ProbeResult:
        """Connect, EHLO, STARTTLS / TLS as configured, AUTH when configured; no MAIL.

        ``connect`` fails unless each configured step succeeds (STARTTLS is required, not
        opportunistic), so reaching the body means all of them did."""
        try:
            async with self._smtp_client(timeout_s):
                steps = ["EHLO ok"]
                if self._security() != "none":
                    steps.append(f"{self._security().upper()} ok")
                if self.has_secret("username"):
                    steps.append("AUTH ok")
                return ProbeResult(True, ", ".join(steps))
        except aiosmtplib.SMTPAuthenticationError as exc:
            self.invalidate_secrets()
            return ProbeResult(False, f"SMTP {exc.code}: authentication refused")
        except (aiosmtplib.SMTPException, OSError) as exc:
            return ProbeResult(False, f"SMTP: {type(exc).__name__}: {exc}")
