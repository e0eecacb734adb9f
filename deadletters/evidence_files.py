"""Checking an uploaded evidence file: size, extension and sniffed content must all agree.

The client's file name and content type are never trusted: the extension must be on the
allow-list, the first bytes must be what that extension promises, and the stored
content type is the one the server derived. Text formats must be UTF-8 without control
characters (so a renamed binary cannot pass as ``.txt``), and JSON must parse.
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import json
import os
import unicodedata
from typing import Any

from .errors import EvidenceRejected

# extension -> kind of content it must hold
ALLOWED_EXTENSIONS = {
    "pdf": "pdf",
    "png": "png",
    "jpg": "jpeg",
    "jpeg": "jpeg",
    "txt": "text",
    "log": "text",
    "csv": "csv",
    "json": "json",
}
CONTENT_TYPES = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "text": "text/plain; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}
MAGIC = {
    "pdf": (b"%PDF-",),
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpeg": (b"\xff\xd8\xff",),
}
TEXT_KINDS = ("text", "csv", "json")
# Control characters a log or CSV may legitimately hold: tab, newline, form feed, CR.
_ALLOWED_CONTROLS = {"\t", "\n", "\x0c", "\r"}


@dataclasses.dataclass(frozen=True, slots=True)
class CheckedFile:
    content: bytes
    extension: str
    content_type: str
    sha256: str
    size: int
    original_name: str


def clean_original_name(name: str) -> str:
    """The client's file name for display and download only: base name, no control chars."""
    base = os.path.basename(str(name or "").replace("\\", "/"))
    printable = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    if len(printable) > 255:
        stem, dot, ext = printable.rpartition(".")
        printable = (stem[: 250 - len(ext)] + dot + ext) if dot else printable[:255]
    return printable or "evidence"


def _extension(name: str) -> str:
    _, dot, ext = name.rpartition(".")
    return ext.lower() if dot else ""


def sniff(content: bytes) -> str | None:
    """The kind of content the bytes hold, from their first bytes; None if unknown."""
    for kind, signatures in MAGIC.items():
        if any(content.startswith(signature) for signature in signatures):
            return kind
    if _is_plain_text(content):
        return "text"
    return None


def _is_plain_text(content: bytes) -> bool:
    if b"\x00" in content:
        return False
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        text = decoder.decode(content, final=True)
    except UnicodeDecodeError:
        return False
    return not any(unicodedata.category(ch) == "Cc" and ch not in _ALLOWED_CONTROLS for ch in text)


def check_upload(upload: Any, *, max_bytes: int) -> CheckedFile:
    """Read and vet an uploaded file (Django ``UploadedFile`` or any object with ``read``)."""
    original = clean_original_name(getattr(upload, "name", "") or "")
    extension = _extension(original)
    expected = ALLOWED_EXTENSIONS.get(extension)
    if expected is None:
        allowed = ", ".join(f".{ext}" for ext in ALLOWED_EXTENSIONS)
        raise EvidenceRejected(
            f"Files of type .{extension or '?'} are not accepted; use {allowed}."
        )
    declared_size = getattr(upload, "size", None)
    if declared_size is not None and declared_size > max_bytes:
        raise EvidenceRejected(_too_large(max_bytes))
    if hasattr(upload, "seek"):
        upload.seek(0)
    content = upload.read(max_bytes + 1)
    if len(content) > max_bytes:
        raise EvidenceRejected(_too_large(max_bytes))
    if not content:
        raise EvidenceRejected("The file is empty.")
    kind = sniff(content)
    text_ok = expected in TEXT_KINDS and kind == "text"
    if kind != expected and not text_ok:
        found = f"{kind} content" if kind else "content of an unknown or binary type"
        raise EvidenceRejected(
            f"The file is named .{extension} but holds {found}; it was not accepted."
        )
    if expected == "json":
        try:
            json.loads(content.decode("utf-8-sig"))
        except ValueError:
            raise EvidenceRejected("The .json file does not hold valid JSON.") from None
    return CheckedFile(
        content=content,
        extension="jpg" if expected == "jpeg" else extension,
        content_type=CONTENT_TYPES[expected],
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
        original_name=original,
    )


def _too_large(max_bytes: int) -> str:
    return f"The file is larger than the {max_bytes / (1024 * 1024):g} MiB limit."
