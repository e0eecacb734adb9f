"""An smtp destination: one email when the episode opens, one when it resolves, to the
rule's addresses, through a real SMTP server (aiosmtpd) on a loopback port."""

from __future__ import annotations

import contextlib
import email
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller

from portal.escalation.tasks import evaluate_escalations

from .conftest import REJECTED

SMTP_PORTS = range(8390, 8400)


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.Message]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp_port() -> Iterator[tuple[int, Mailbox]]:
    mailbox = Mailbox()
    for port in SMTP_PORTS:
        controller = Controller(mailbox, hostname="127.0.0.1", port=port)
        with contextlib.suppress(OSError):
            controller.start()
            break
    else:
        pytest.fail("no free port in 8390-8399")
    try:
        yield port, mailbox
    finally:
        controller.stop()


def test_an_email_on_trigger_and_on_resolve(
    registry, smtp_port, tmp_path, dead_letter, frozen_clock
) -> None:
    port, mailbox = smtp_port
    (tmp_path / "connections" / "mail.toml").write_text(
        'key = "mail"\nprovider = "smtp"\n[settings]\nhost = "127.0.0.1"\n'
        f'port = {port}\nsecurity = "none"\nfrom = "Portal <portal@example.com>"\n'
    )
    registry(
        '[[rule]]\nkey = "dl"\nkind = "dead_letters.burst"\ncount = 1\nwindow_minutes = 5\n'
        'severity = "warning"\n'
        'destinations = [{ connection = "mail", to = ["oncall@example.com"] }]\n'
    )
    dead_letter(REJECTED)

    evaluate_escalations()
    frozen_clock.advance(6 * 60)
    evaluate_escalations()

    (to1, opened), (to2, resolved) = mailbox.messages
    assert to1 == to2 == ["oncall@example.com"]
    assert opened["Subject"] == "[WARNING] 1 dead letter opened in 5 min for target sms.fast"
    assert resolved["Subject"] == "[RESOLVED] 1 dead letter opened in 5 min for target sms.fast"
    assert "kind: dead_letters.burst" in opened.get_payload()
    assert opened["Message-ID"] != resolved["Message-ID"]


def test_smtp_needs_addresses(registry, tmp_path) -> None:
    from django.core.management.base import CommandError

    (tmp_path / "connections" / "mail.toml").write_text(
        'key = "mail"\nprovider = "smtp"\n[settings]\nhost = "127.0.0.1"\nfrom = "p@example.com"\n'
    )
    with pytest.raises(CommandError, match=r"destination 'mail' \(smtp\) needs to = \[addresses\]"):
        registry(
            '[[rule]]\nkey = "dl"\nkind = "backlog.stale"\nolder_than_s = 60\n'
            'destinations = ["mail"]\n'
        )
