"""``plain_message`` writes what ``build_email`` + aiosmtplib's ``send_message`` wrote.

The reference is the email package path itself: ``build_email`` flattened by
aiosmtplib's ``flatten_message`` with the policy ``send_message`` picks. With the clock
and the boundary's random draw fixed, the bytes must be equal; parsed back
(``policy.default``) every header and part must be too. Whatever the fast path cannot
write must answer None, so that the email package writes (or refuses) it.
"""

from __future__ import annotations

import asyncio
import random
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
import time_machine
from aiosmtpd.controller import Controller
from aiosmtplib.email import flatten_message

from gateways.base import Outcome
from gateways.providers.smtp import SmtpProvider, build_email, envelope_sender
from gateways.providers.smtp_wire import plain_message

from .conftest import DictSecrets, connection, free_port
from .test_smtp import Mailbox

SENDER = "Acme Notifications <notify@acme.example>"
MESSAGE_ID = "<intent-42@acme.example>"
LONG_LINE = "word " * 30  # 150 characters: folded headers, a body the policy encodes

WRITTEN_PLAIN = {
    "bench": {"to": "u1@bench.example", "subject": "bench", "text": "bench message"},
    "text and html": {
        "to": ["ann@example.org", "bob@example.org"],
        "cc": "carol@example.org",
        "bcc": ["dave@example.org"],
        "reply_to": "support@acme.example",
        "subject": "Your order has shipped",
        "text": "Hello Ann,\n\nyour order has shipped.\n",
        "html": "<p>Hello Ann,</p>\n<p>your order has shipped.</p>",
        "headers": {"X-Campaign": "spring", "List-Unsubscribe": "<https://acme.example/u>"},
    },
    "html only": {"to": "a@b.example", "subject": "s", "html": "<b>hi</b>"},
    "display names": {
        "to": ["Ann Smith <ann@example.org>", '"Smith, Bob" <bob@example.org>'],
        "reply_to": "Zoë Ünal <zoe@example.org>",  # not a recipient: no SMTPUTF8
        "subject": "s",
        "text": "t",
    },
    "non-ASCII subject": {
        "to": "a@b.example",
        "subject": "Bestätigung: Ihre Bestellung",
        "text": "t",
    },
    "long subject": {"to": "a@b.example", "subject": LONG_LINE, "text": "t"},
    "long address list": {
        "to": [f"recipient{n}@example.org" for n in range(8)],
        "subject": "s",
        "text": "t",
    },
    "encoded word in subject": {
        "to": "a@b.example",
        "subject": "=?utf-8?q?caf=C3=A9?=",
        "text": "t",
    },
    "spaces and tabs": {"to": "a@b.example", "subject": "  two  spaces\tand tab ", "text": "t"},
    "structured extra header": {
        "to": "a@b.example",
        "subject": "s",
        "text": "t",
        "headers": {"Sender": "Ops Team <ops@acme.example>", "X-Note": "é"},
    },
    "line endings": {"to": "a@b.example", "subject": "s", "text": "a\r\nb\rc\n\n", "html": "<p>\n"},
}
WRITTEN_BY_THE_EMAIL_PACKAGE = {
    "non-ASCII body": {"to": "a@b.example", "subject": "s", "text": "Grüße"},
    "long body line": {"to": "a@b.example", "subject": "s", "text": LONG_LINE},
    "long html line": {"to": "a@b.example", "subject": "s", "text": "t", "html": LONG_LINE},
    "non-ASCII recipient": {"to": "zoë@example.org", "subject": "s", "text": "t"},
    # aiosmtplib asks for SMTPUTF8 on the raw recipient strings, display names included.
    "non-ASCII display name of a recipient": {
        "to": "a@b.example",
        "cc": "Zoë Ünal <zoe@example.org>",
        "subject": "s",
        "text": "t",
    },
    "content header beside alternatives": {
        "to": "a@b.example",
        "subject": "s",
        "text": "t",
        "html": "<p>h</p>",
        "headers": {"Content-Disposition": "inline"},
    },
    "repeated header": {
        "to": "a@b.example",
        "subject": "s",
        "text": "t",
        "headers": {"Sender": "a@b.example", "sender": "c@d.example"},
    },
    # Refused by build_email or by the email package: they must refuse it still.
    "line feed in the subject": {
        "to": "a@b.example",
        "subject": "s\nBcc: x@y.example",
        "text": "t",
    },
    "reserved header": {"to": "a@b.example", "subject": "s", "text": "t", "headers": {"Bcc": "x"}},
    "no body": {"to": "a@b.example", "subject": "s"},
    "no recipient": {"subject": "s", "text": "t"},
}


def email_package_bytes(payload: dict[str, Any], *, eight_bit: bool) -> bytes:
    """What the provider sent before ``plain_message``: ``send_message`` flattens with
    SMTP's policy, ``cte_type`` 8bit when the server offers 8BITMIME."""
    mail, _ = build_email(payload, sender=SENDER, message_id=MESSAGE_ID)
    random.seed(12)  # the boundary
    return flatten_message(mail, utf8=False, cte_type="8bit" if eight_bit else "7bit")


def plain_bytes(payload: dict[str, Any]) -> tuple[bytes, list[str]] | None:
    random.seed(12)
    return plain_message(
        payload, sender=SENDER, envelope_sender=envelope_sender(SENDER), message_id=MESSAGE_ID
    )


def parsed(data: bytes) -> list[tuple[list[tuple[str, str]], str | bytes | None]]:
    """Each part's headers and decoded content, as a receiver reads them."""
    mail = message_from_bytes(data, policy=policy.default)
    assert isinstance(mail, EmailMessage)
    return [
        (
            [(name, str(value)) for name, value in part.items()],
            None if part.is_multipart() else part.get_content(),
        )
        for part in mail.walk()
    ]


@pytest.fixture(autouse=True)
def fixed_clock() -> Any:
    with time_machine.travel("2026-12-04 20:46:03+00:00", tick=False):
        yield


@pytest.mark.parametrize("payload", WRITTEN_PLAIN.values(), ids=WRITTEN_PLAIN.keys())
@pytest.mark.parametrize("eight_bit", [True, False], ids=["8BITMIME", "7bit server"])
def test_plain_messages_are_the_email_packages_bytes(payload, eight_bit) -> None:
    plain = plain_bytes(payload)
    assert plain is not None
    data, recipients = plain
    before = email_package_bytes(payload, eight_bit=eight_bit)
    assert parsed(data) == parsed(before)
    assert data == before
    assert recipients == build_email(payload, sender=SENDER, message_id=MESSAGE_ID)[1]


@pytest.mark.parametrize(
    "payload", WRITTEN_BY_THE_EMAIL_PACKAGE.values(), ids=WRITTEN_BY_THE_EMAIL_PACKAGE.keys()
)
def test_the_rest_is_left_to_the_email_package(payload) -> None:
    assert plain_bytes(payload) is None


ALPHABET = ["a", "Z", "0", " ", "  ", "\t", ".", ",", ";", ":", "<", ">", "@", '"', "(", ")"]
ALPHABET += ["=?", "?=", "\\", "é", "ü", "-", "'", "_", "=", "?"]


def random_text(draw: random.Random, longest: int) -> str:
    return "".join(draw.choice(ALPHABET) for _ in range(draw.randrange(1, longest)))


def random_address(draw: random.Random) -> str:
    address = draw.choice(["ann@example.org", "a.b+c@mail.example.org", "x_y@z.example"])
    shape = draw.randrange(3)
    if shape == 0:
        return address
    return (
        f"{random_text(draw, 8)} <{address}>"
        if shape == 1
        else f"{address} ({random_text(draw, 5)})"
    )


def test_random_headers_are_written_as_the_email_package_writes_them() -> None:
    draw = random.Random(20261204)
    plain_written = 0
    for _ in range(600):
        payload = {
            "to": [random_address(draw) for _ in range(draw.randrange(1, 4))],
            "subject": random_text(draw, 40),
            "text": "t",
            "headers": {"X-Random": random_text(draw, 90)},
        }
        if draw.random() < 0.3:
            payload["reply_to"] = random_address(draw)
        try:
            before = email_package_bytes(payload, eight_bit=True)
        except Exception:  # the email package refuses it (or trips over it)
            assert plain_bytes(payload) is None
            continue
        plain = plain_bytes(payload)
        if plain is not None:
            plain_written += 1
            assert plain[0] == before, payload
    assert plain_written > 300  # most of them took the fast path


@pytest.mark.parametrize(
    "payload",
    [WRITTEN_PLAIN["text and html"], WRITTEN_BY_THE_EMAIL_PACKAGE["non-ASCII body"]],
    ids=["plain", "email package"],
)
def test_the_server_receives_what_the_email_package_sent(
    allow_hosts, make_message, payload
) -> None:
    """Through aiosmtpd: the same envelope, ``BODY=8BITMIME`` and content either way."""
    allow_hosts("127.0.0.1")
    mailbox, port = Mailbox(), free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    smtp = SmtpProvider(
        config=connection(
            "smtp",
            "email",
            settings={"host": "127.0.0.1", "port": port, "security": "none", "from": SENDER},
        ),
        client=None,
        secrets=DictSecrets({}),
    )

    async def scenario() -> Any:
        try:
            return await smtp.send(make_message(payload, key="intent-42"), timeout_s=5.0)
        finally:
            await smtp.aclose()

    try:
        random.seed(12)
        result = asyncio.run(scenario())
    finally:
        controller.stop()
    assert result.outcome is Outcome.ACCEPTED, result.error
    assert result.message_id == MESSAGE_ID
    (envelope,) = mailbox.envelopes
    assert envelope.mail_options[1:] == ["BODY=8BITMIME"]  # after SIZE, as before
    assert envelope.mail_from == envelope_sender(SENDER)
    assert envelope.rcpt_tos == build_email(payload, sender=SENDER, message_id=MESSAGE_ID)[1]
    assert envelope.original_content == email_package_bytes(payload, eight_bit=True)
