"""The wire bytes of a plain email, written without building an ``EmailMessage``.

Building the MIME message with the standard library's ``email`` package and flattening
it again in aiosmtplib's ``send_message`` was most of the SMTP path's client CPU
(docs/performance.md, issue 12): every header is parsed into a tree and refolded. Most
messages need none of it: ASCII headers that fit on a line, an ASCII body of short
lines (``7bit``), addresses ASCII enough not to need SMTPUTF8. For those,
``plain_message`` writes the bytes ``build_email`` + ``send_message`` would have put on
the wire: the same headers in the same order, the same MIME structure. A header it
cannot prove plain (a non-ASCII subject, a display name to quote) is folded by the
``email`` policy exactly as the generator would; anything else (non-ASCII or long
body lines, SMTPUTF8 addresses, a payload ``build_email`` would refuse) answers
``None``, and the caller takes the ``email`` package path. The tests compare both
paths byte for byte.
"""

from __future__ import annotations

import email.headerregistry
import email.policy
import email.utils
import functools
import random
import re
import sys
from collections.abc import Mapping
from typing import Any

from .common import require_fields

# Headers the payload may not set: they are built from its own fields or by us.
RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "reply-to",
        "message-id",
        "content-type",
        "content-transfer-encoding",
        "mime-version",
        "date",
    }
)
MAX_LINE: int = email.policy.SMTP.max_line_length or 78  # as the generator folds
# Names the policy parses into a structure (addresses, dates, MIME parameters).
HEADER_CLASSES = frozenset(email.headerregistry.HeaderRegistry().registry)
# Printable ASCII words separated by single spaces: an unstructured header the
# policy writes back as it is (an encoded word ``=?`` would be decoded and re-encoded).
PLAIN_TEXT = re.compile(r"[!-~]+(?: [!-~]+)*")
ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
DOT_ATOM = rf"{ATEXT}(?:\.{ATEXT})*"
ADDR_SPEC = rf"{DOT_ATOM}@{DOT_ATOM}"
# ``addr-spec`` or ``atom atom <addr-spec>``: written back unchanged, never quoted.
PLAIN_ADDRESS = re.compile(rf"{ADDR_SPEC}|{ATEXT}(?: {ATEXT})* <{ADDR_SPEC}>")
PLAIN_MESSAGE_ID = re.compile(rf"<{DOT_ATOM}@{DOT_ATOM}>")
# The generator's boundary: 15 '=', the token in as many digits as sys.maxsize, '=='.
BOUNDARY_DIGITS = len(repr(sys.maxsize - 1))


def plain_message(
    payload: Mapping[str, Any], *, sender: str, envelope_sender: str, message_id: str
) -> tuple[bytes, list[str]] | None:
    """The message's wire bytes and envelope recipients, or None when only the
    ``email`` package can write it (or refuse it) as ``build_email`` does."""
    try:
        return _plain_message(
            payload, sender=sender, envelope_sender=envelope_sender, message_id=message_id
        )
    except Exception:  # a payload error, or one of the email package's
        return None  # own: build_email raises it, in its own order


def _plain_message(
    payload: Mapping[str, Any], *, sender: str, envelope_sender: str, message_id: str
) -> tuple[bytes, list[str]] | None:
    require_fields(payload, "email", "to", "subject")
    text, html = payload.get("text"), payload.get("html")
    if not text and not html:
        return None
    to, cc, bcc = (
        _addresses(payload["to"]),
        _addresses(payload.get("cc")),
        _addresses(payload.get("bcc")),
    )
    reply_to = _addresses(payload.get("reply_to"))
    recipients = to + cc + bcc
    if not _ascii(envelope_sender) or not recipients or not _ascii("".join(recipients)):
        return None  # SMTPUTF8 changes the policy of every header
    extra = payload.get("headers") or {}
    if not isinstance(extra, Mapping):
        return None
    pairs = [(str(name), str(value)) for name, value in extra.items()]
    lowered = {name.lower() for name, _ in pairs}
    if len(lowered) != len(pairs) or lowered & RESERVED_HEADERS:
        return None  # refused by build_email, or maybe by the email package (repeated)
    headers = [_cached_header("From", sender), _address_header("To", to)]
    if cc:
        headers.append(_address_header("Cc", cc))
    if reply_to:
        headers.append(_address_header("Reply-To", reply_to))
    headers.append(_unstructured_header("Subject", str(payload["subject"])))
    headers.append(_message_id_header(message_id))
    headers.append(_cached_header("Date", email.utils.formatdate(localtime=False)))
    headers.extend(_extra_header(name, value) for name, value in pairs)
    text_body = _seven_bit(str(text)) if text else ""
    html_body = _seven_bit(str(html)) if html else ""
    if text_body is None or html_body is None:
        return None  # 8bit, quoted-printable or base64: the email package decides
    if text_body and html_body:
        if any(name.startswith("content-") for name in lowered):
            return None  # the email package moves them into the first part
        return _alternative(headers, text_body, html_body), recipients
    subtype = "plain" if text_body else "html"
    head = "".join(headers) + _part_headers(subtype) + "MIME-Version: 1.0\r\n"
    return (head + "\r\n" + (text_body or html_body)).encode("ascii"), recipients


def _alternative(headers: list[str], text: str, html: str) -> bytes:
    """``multipart/alternative`` as ``set_content`` + ``add_alternative`` lay it out."""
    boundary = _boundary(text + html)
    head = "".join(headers) + "MIME-Version: 1.0\r\n"
    head += f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'
    return (
        f"{head}\r\n--{boundary}\r\n{_part_headers('plain')}\r\n{text}"
        f"\r\n--{boundary}\r\n{_part_headers('html')}MIME-Version: 1.0\r\n\r\n{html}"
        f"\r\n--{boundary}--\r\n"
    ).encode("ascii")


def _boundary(bodies: str) -> str:
    """A boundary drawn as the generator draws it, one the bodies do not contain."""
    boundary = "=" * 15 + str(random.randrange(sys.maxsize)).zfill(BOUNDARY_DIGITS) + "=="
    candidate, counter = boundary, 0
    while "--" + candidate in bodies:
        candidate, counter = f"{boundary}.{counter}", counter + 1
    return candidate


def _part_headers(subtype: str) -> str:
    return f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: 7bit\r\n'


def _seven_bit(body: str) -> str | None:
    """The body as the generator writes a ``7bit`` part, or None when it is not one."""
    if not _ascii(body):
        return None
    lines = body.encode("ascii").splitlines()
    if max((len(line) for line in lines), default=0) > MAX_LINE:
        return None
    return b"\r\n".join(lines).decode("ascii") + "\r\n"


def _address_header(name: str, addresses: list[str]) -> str:
    value = ", ".join(addresses)
    if all(PLAIN_ADDRESS.fullmatch(address) for address in addresses):
        return _short(name, value) or _folded(name, value)
    return _folded(name, value)


def _unstructured_header(name: str, value: str) -> str:
    if PLAIN_TEXT.fullmatch(value):
        return _short(name, value) or _folded(name, value)
    return _folded(name, value)


def _message_id_header(value: str) -> str:
    if PLAIN_MESSAGE_ID.fullmatch(value):
        return _short("Message-ID", value) or _folded("Message-ID", value)
    return _folded("Message-ID", value)


def _extra_header(name: str, value: str) -> str:
    if name.lower() in HEADER_CLASSES:
        return _folded(name, value)  # a structured header: the policy renders it
    return _unstructured_header(name, value)


def _short(name: str, value: str) -> str | None:
    """The header on one line as given, when the policy would write it so: it fits, and
    holds no ``=?`` (the parser would decode an encoded word and encode it again)."""
    line = f"{name}: {value}"
    return line + "\r\n" if len(line) <= MAX_LINE and "=?" not in value else None


@functools.lru_cache(maxsize=256)
def _cached_header(name: str, value: str) -> str:
    """For values that repeat: the connection's sender, the Date of the current second."""
    return _folded(name, value)


def _folded(name: str, value: str) -> str:
    """The header as ``EmailMessage`` stores it and aiosmtplib's generator writes it."""
    _, header = email.policy.default.header_store_parse(name, value)
    return str(email.policy.SMTP.fold(name, header))


def _addresses(value: Any) -> list[str]:
    if value in (None, "", []):
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError("not an address list")  # build_email says what is wrong


def _ascii(value: str) -> bool:
    return value.isascii()
