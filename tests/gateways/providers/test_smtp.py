"""The smtp provider against a real SMTP server (aiosmtpd) with STARTTLS, implicit TLS
and AUTH, using a self-signed certificate made here."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterator
from email import message_from_bytes, policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from gateways.base import Outcome
from gateways.providers import provider_class
from gateways.providers.smtp import SmtpProvider

from .conftest import DictSecrets, connection, free_port

USERNAME, PASSWORD = "mailer", "s3cret-Pa55word"


class Mailbox:
    """The aiosmtpd handler: refuses some recipients as real servers do, keeps the rest."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.peers: list[tuple[str, int]] = []  # the client end of the session of each message

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        local = address.partition("@")[0]
        if local.startswith("nouser"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if local.startswith("greylisted"):
            return "451 4.7.1 Greylisted, please try again later"
        if local.startswith("policy"):
            return "554 5.7.1 Relay access denied"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        if b"X-Reject-Data" in envelope.content:
            return "552 5.3.4 Message size exceeds fixed limit"
        self.envelopes.append(envelope)
        self.peers.append(session.peer)
        return "250 2.0.0 Ok: queued as 4F9A2"


def authenticate(
    server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, auth_data
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USERNAME.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


@pytest.fixture(params=["starttls", "tls"])
def smtp_server(request, certificate) -> Iterator[tuple[str, int, Mailbox, str]]:
    cert_path, key_path = certificate
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_path, key_path)
    mailbox = Mailbox()
    port = free_port()
    common: dict[str, Any] = {
        "hostname": "127.0.0.1",
        "port": port,
        "authenticator": authenticate,
        "auth_require_tls": True,
    }
    if request.param == "starttls":
        controller = Controller(mailbox, tls_context=tls, require_starttls=True, **common)
    else:
        # Implicit TLS: the whole session is encrypted, but aiosmtpd only counts STARTTLS
        # towards auth_require_tls, so it must be lifted to offer AUTH at all.
        common["auth_require_tls"] = False
        controller = Controller(mailbox, ssl_context=tls, server_hostname="127.0.0.1", **common)
    controller.start()
    yield "127.0.0.1", port, mailbox, request.param
    controller.stop()


@pytest.fixture(autouse=True)
def _allowed(allow_hosts) -> None:
    allow_hosts("127.0.0.1")


def provider(server, certificate, *, password: str = PASSWORD, **settings) -> SmtpProvider:
    host, port, _, security = server
    return SmtpProvider(
        config=connection(
            "smtp",
            "email",
            settings={
                "host": host,
                "port": port,
                "security": security,
                "from": "Acme <noreply@acme.example>",
                "ca_file": str(certificate[0]),
                **settings,
            },
            secrets={"username": "env:SMTP_USER", "password": "env:SMTP_PASSWORD"},
        ),
        client=None,
        secrets=DictSecrets({"env:SMTP_USER": USERNAME, "env:SMTP_PASSWORD": password}),
    )


def send(smtp: SmtpProvider, message, timeout_s: float = 5.0):
    async def scenario():
        try:
            return await smtp.send(message, timeout_s=timeout_s)
        finally:
            await smtp.aclose()

    return asyncio.run(scenario())


def test_registered() -> None:
    assert provider_class("smtp") is SmtpProvider


def test_delivers_a_multipart_message_over_tls_with_auth(
    smtp_server, certificate, make_message
) -> None:
    message = make_message(
        {
            "to": ["ann@example.org", "bob@example.org"],
            "cc": "carol@example.org",
            "bcc": ["dave@example.org"],
            "reply_to": "support@acme.example",
            "subject": "Your code",
            "text": "Code 123456",
            "html": "<p>Code <b>123456</b></p>",
            "headers": {"X-Campaign": "otp"},
        },
        key="intent-42",
    )

    result = send(provider(smtp_server, certificate), message)

    assert result.outcome is Outcome.ACCEPTED, result.error
    assert result.message_id == "<intent-42@acme.example>"
    (envelope,) = smtp_server[2].envelopes
    assert envelope.mail_from == "noreply@acme.example"
    assert envelope.rcpt_tos == [
        "ann@example.org",
        "bob@example.org",
        "carol@example.org",
        "dave@example.org",
    ]
    mail = message_from_bytes(envelope.original_content, policy=policy.default)
    assert mail["From"] == "Acme <noreply@acme.example>"
    assert mail["To"] == "ann@example.org, bob@example.org"
    assert mail["Cc"] == "carol@example.org"
    assert mail["Bcc"] is None  # envelope only
    assert mail["Reply-To"] == "support@acme.example"
    assert mail["Subject"] == "Your code"
    assert mail["Message-ID"] == "<intent-42@acme.example>"
    assert mail["X-Campaign"] == "otp"
    plain, html = mail.get_body(("plain",)), mail.get_body(("html",))
    assert plain is not None
    assert html is not None
    assert plain.get_content().strip() == "Code 123456"
    assert html.get_content().strip() == "<p>Code <b>123456</b></p>"


def test_unknown_mailbox_is_permanent_and_suppressed(
    smtp_server, certificate, make_message
) -> None:
    message = make_message({"to": "nouser@example.org", "subject": "s", "text": "t"})
    result = send(provider(smtp_server, certificate), message)
    assert result.outcome is Outcome.REJECTED_PERMANENT
    assert result.suppress_recipient
    assert result.provider_code == "550"
    assert "5.1.1" in result.error


def test_policy_refusal_is_permanent_but_not_suppressed(
    smtp_server, certificate, make_message
) -> None:
    message = make_message({"to": "policy@example.org", "subject": "s", "text": "t"})
    result = send(provider(smtp_server, certificate), message)
    assert result.outcome is Outcome.REJECTED_PERMANENT
    assert not result.suppress_recipient


def test_4xx_is_transient(smtp_server, certificate, make_message) -> None:
    message = make_message({"to": "greylisted@example.org", "subject": "s", "text": "t"})
    result = send(provider(smtp_server, certificate), message)
    assert result.outcome is Outcome.REJECTED_TRANSIENT
    assert not result.suppress_recipient
    assert result.provider_code == "451"


def test_data_refusal_is_permanent_without_suppression(
    smtp_server, certificate, make_message
) -> None:
    message = make_message(
        {"to": "ann@example.org", "subject": "s", "text": "t", "headers": {"X-Reject-Data": "1"}}
    )
    result = send(provider(smtp_server, certificate), message)
    assert result.outcome is Outcome.REJECTED_PERMANENT
    assert not result.suppress_recipient
    assert result.provider_code == "552"


def test_one_refused_recipient_among_others_still_delivers(
    smtp_server, certificate, make_message
) -> None:
    message = make_message(
        {"to": ["ann@example.org", "nouser@example.org"], "subject": "s", "text": "t"}
    )
    result = send(provider(smtp_server, certificate), message)
    assert result.outcome is Outcome.ACCEPTED
    assert "nouser@example.org (550)" in result.error
    assert smtp_server[2].envelopes[0].rcpt_tos == ["ann@example.org"]


def test_wrong_password_is_an_auth_failure(smtp_server, certificate, make_message) -> None:
    smtp = provider(smtp_server, certificate, password="wrong-password")
    result = send(smtp, make_message({"to": "ann@example.org", "subject": "s", "text": "t"}))
    assert result.outcome is Outcome.REJECTED_TRANSIENT
    assert result.auth_failed
    assert "wrong-password" not in result.error
    assert set(smtp._secrets.invalidated) == {"env:SMTP_USER", "env:SMTP_PASSWORD"}  # type: ignore[attr-defined]


def test_untrusted_certificate_is_refused(smtp_server, certificate, make_message) -> None:
    smtp = provider(smtp_server, certificate, ca_file="")  # the system CAs only
    result = send(smtp, make_message({"to": "ann@example.org", "subject": "s", "text": "t"}))
    assert result.outcome is Outcome.REJECTED_TRANSIENT
    assert smtp_server[2].envelopes == []


def test_probe_authenticates_without_sending(smtp_server, certificate) -> None:
    probe = asyncio.run(provider(smtp_server, certificate).probe(timeout_s=5))
    assert probe.ok, probe.detail
    assert "AUTH ok" in probe.detail
    assert smtp_server[2].envelopes == []
    bad = asyncio.run(provider(smtp_server, certificate, password="nope-nope").probe(timeout_s=5))
    assert not bad.ok
    assert "535" in bad.detail


def test_host_outside_the_allow_list(settings, certificate, make_message) -> None:
    settings.GATEWAY_ALLOWED_HOSTS = ["smtp.example"]
    smtp = provider(("127.0.0.1", 1, None, "starttls"), certificate)
    result = send(smtp, make_message({"to": "ann@example.org", "subject": "s", "text": "t"}))
    assert result.outcome is Outcome.EXECUTOR_ERROR
    assert "GATEWAY_ALLOWED_HOSTS" in result.error


def test_plain_server_without_tls(certificate, make_message) -> None:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        smtp = SmtpProvider(
            config=connection(
                "smtp",
                "email",
                settings={
                    "host": "127.0.0.1",
                    "port": port,
                    "security": "none",
                    "from": "a@acme.example",
                },
            ),
            client=None,
            secrets=DictSecrets({}),
        )
        result = send(
            smtp, make_message({"to": "ann@example.org", "subject": "s", "html": "<p>x</p>"})
        )
    finally:
        controller.stop()
    assert result.outcome is Outcome.ACCEPTED
    assert mailbox.envelopes[0].rcpt_tos == ["ann@example.org"]


def test_silent_server_times_out(make_message) -> None:
    with socket.socket() as listener:  # accepts the connection, never greets
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        smtp = SmtpProvider(
            config=connection(
                "smtp",
                "email",
                settings={
                    "host": "127.0.0.1",
                    "port": listener.getsockname()[1],
                    "security": "none",
                    "from": "a@acme.example",
                },
            ),
            client=None,
            secrets=DictSecrets({}),
        )
        result = send(
            smtp,
            make_message({"to": "ann@example.org", "subject": "s", "text": "t"}),
            timeout_s=1.0,
        )
    # Silent before the greeting: nothing was sent, so a retry (even at most once) is safe.
    assert result.outcome is Outcome.REJECTED_TRANSIENT
    assert "nothing sent" in result.error


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"subject": "s", "text": "t"}, "to"),
        ({"to": "a@b.example", "subject": "s"}, "text or html"),
        (
            {"to": "a@b.example", "subject": "s", "text": "t", "headers": {"Bcc": "x@y.example"}},
            "Bcc",
        ),
    ],
)
def test_payload_errors_are_ours(certificate, make_message, payload, reason) -> None:
    smtp = provider(("127.0.0.1", 1, None, "none"), certificate)
    result = send(smtp, make_message(payload))
    assert result.outcome is Outcome.EXECUTOR_ERROR
    assert reason in result.error


class SilentAfterData(Mailbox):
    """Takes the whole message, then never answers the final dot."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def handle_DATA(self, server, session, envelope) -> str:
        self.envelopes.append(envelope)
        await self.release.wait()
        return "250 OK"


def test_silence_after_the_message_left_is_an_unknown_outcome(make_message) -> None:
    mailbox = SilentAfterData()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        smtp = SmtpProvider(
            config=connection(
                "smtp",
                "email",
                settings={
                    "host": "127.0.0.1",
                    "port": controller.port,
                    "security": "none",
                    "from": "a@acme.example",
                },
            ),
            client=None,
            secrets=DictSecrets({}),
        )
        result = send(
            smtp,
            make_message({"to": "ann@example.org", "subject": "s", "text": "t"}),
            timeout_s=1.0,
        )
    finally:
        controller.loop.call_soon_threadsafe(mailbox.release.set)
        controller.stop()
    # The server holds the message: a resend could deliver it twice (at_most_once: don't).
    assert result.outcome is Outcome.TIMEOUT
    assert "outcome unknown" in result.error
    assert len(mailbox.envelopes) == 1


def test_a_batch_shares_a_few_sessions(smtp_server, certificate, make_message) -> None:
    smtp = provider(smtp_server, certificate, max_connections=2)
    messages = [
        make_message({"to": f"user{n}@example.org", "subject": f"n{n}", "text": "t"})
        for n in range(10)
    ]
    messages.insert(3, make_message({"to": "nouser@example.org", "subject": "x", "text": "t"}))

    async def batch():
        try:
            return await asyncio.gather(*(smtp.send(m, timeout_s=5) for m in messages))
        finally:
            await smtp.aclose()

    results = asyncio.run(batch())

    outcomes = [r.outcome for r in results]
    assert outcomes.count(Outcome.ACCEPTED) == 10
    assert outcomes.count(Outcome.REJECTED_PERMANENT) == 1
    mailbox = smtp_server[2]
    assert len(mailbox.envelopes) == 10
    assert len(set(mailbox.peers)) <= 2  # at most max_connections sessions, each reused
