"""Remediation evidence on a dead letter (append-only): notes, links, files, audited reads."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.validators import URLValidator
from django.db import transaction

from portal import clock
from portal.accounts.roles import OPERATORS, require_role, require_tenant_visible
from portal.audit.services import Actor, audit_record
from portal.errors import InvalidRequest

from ..evidence_files import check_upload
from ..models import DeadLetter, Evidence, EvidenceKind
from ._common import MAX_NOTE_CHARS, lock_dead_letter, require_text


def _evidence_insert(
    *,
    dead_letter: DeadLetter,
    actor: Any,
    evidence: Evidence,
    audit_data: dict[str, Any],
    ip_address: str | None,
) -> Evidence:
    with transaction.atomic():
        locked = lock_dead_letter(dead_letter=dead_letter, actor=actor)
        evidence.dead_letter = locked
        evidence.created_by = actor
        evidence.created_at = clock.now()
        evidence.save(force_insert=True)
        audit_record(
            actor=Actor.user(actor),
            action="evidence.added",
            object_type="dead_letter",
            object_id=str(locked.public_id),
            data={"evidence_id": evidence.pk, "kind": evidence.kind, **audit_data},
            ip_address=ip_address,
        )
    return evidence


def evidence_add_note(
    *, dead_letter: DeadLetter, actor: Any, text: str, ip_address: str | None = None
) -> Evidence:
    note = require_text(text, name="note", max_chars=MAX_NOTE_CHARS)
    return _evidence_insert(
        dead_letter=dead_letter,
        actor=actor,
        evidence=Evidence(kind=EvidenceKind.NOTE, note=note),
        audit_data={"length": len(note)},
        ip_address=ip_address,
    )


_LINK_VALIDATOR = URLValidator(schemes=["http", "https"])


def evidence_add_link(
    *,
    dead_letter: DeadLetter,
    actor: Any,
    url: str,
    title: str = "",
    ip_address: str | None = None,
) -> Evidence:
    """A link (ticket, incident, runbook); only http and https URLs are accepted."""
    link = str(url or "").strip()
    max_length = Evidence._meta.get_field("url").max_length or 0
    if len(link) > max_length:
        raise InvalidRequest(f"The link is longer than {max_length} characters.")
    try:
        _LINK_VALIDATOR(link)
    except ValidationError:
        raise InvalidRequest("Enter a full http:// or https:// link.") from None
    description = str(title or "").strip()[:MAX_NOTE_CHARS]
    return _evidence_insert(
        dead_letter=dead_letter,
        actor=actor,
        evidence=Evidence(kind=EvidenceKind.LINK, url=link, note=description),
        audit_data={"url": link},
        ip_address=ip_address,
    )


def evidence_add_file(
    *,
    dead_letter: DeadLetter,
    actor: Any,
    upload: Any,
    ip_address: str | None = None,
) -> Evidence:
    """Store a vetted file under a server-generated name, with its SHA-256 and size."""
    require_role(actor, OPERATORS)
    require_tenant_visible(actor, dead_letter.tenant_id)
    checked = check_upload(upload, max_bytes=settings.EVIDENCE_MAX_BYTES)
    evidence = Evidence(
        kind=EvidenceKind.FILE,
        original_name=checked.original_name,
        content_type=checked.content_type,
        size=checked.size,
        sha256=checked.sha256,
    )
    # The storage name is ours alone: a random hex name with the vetted extension.
    evidence.file.save(
        f"{uuid.uuid4().hex}.{checked.extension}", ContentFile(checked.content), save=False
    )
    stored_name = evidence.file.name
    if not stored_name:  # kept under ``python -O``, unlike an assert
        raise RuntimeError("The evidence storage saved the file without naming it.")
    try:
        return _evidence_insert(
            dead_letter=dead_letter,
            actor=actor,
            evidence=evidence,
            audit_data={
                "name": checked.original_name,
                "sha256": checked.sha256,
                "size": checked.size,
                "content_type": checked.content_type,
            },
            ip_address=ip_address,
        )
    except BaseException:
        evidence.file.storage.delete(stored_name)  # no orphan file for a refused row
        raise


def evidence_file_open(
    *, evidence: Evidence, user: Any, ip_address: str | None = None
) -> File[bytes]:
    """Open an evidence file for a staff download; each read is audited (who read what).

    Evidence may hold customer data from a failed delivery, so reading it is an
    operator action like adding it. Raises ``FileNotFoundError`` (and records nothing)
    when the stored file is gone.
    """
    handle = evidence.file.open("rb")
    audit_record(
        actor=Actor.user(user),
        action="evidence.downloaded",
        object_type="dead_letter",
        object_id=str(evidence.dead_letter.public_id),
        data={
            "evidence_id": evidence.pk,
            "name": evidence.original_name,
            "sha256": evidence.sha256,
        },
        ip_address=ip_address,
    )
    return handle
