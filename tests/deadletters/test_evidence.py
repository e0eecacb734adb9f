"""Remediation evidence: notes, http(s) links, vetted files; append-only and audited."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction

from deadletters import services
from deadletters.errors import EvidenceRejected
from deadletters.models import Evidence, EvidenceKind
from portal.audit.models import AuditEvent
from portal.errors import InvalidRequest, PermissionDenied
from tests.accounts.factories import create_staff_user

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(64))
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"


def evidence_events():
    return list(
        AuditEvent.objects.filter(action="evidence.added")
        .order_by("sequence")
        .values("actor_label", "object_id", "data", "ip_address")
    )


def test_note_is_stored_and_audited(dead_letter, operator):
    user, _ = operator
    dl = dead_letter()
    evidence = services.evidence_add_note(
        dead_letter=dl, actor=user, text="  gateway had an outage  ", ip_address="10.0.0.7"
    )
    assert (evidence.kind, evidence.note, evidence.created_by) == (
        EvidenceKind.NOTE,
        "gateway had an outage",
        user,
    )
    assert [e.pk for e in dl.evidence.all()] == [evidence.pk]
    [event] = evidence_events()
    assert event["actor_label"] == "olga"
    assert event["object_id"] == str(dl.public_id)
    assert event["ip_address"] == "10.0.0.7"
    assert event["data"]["evidence_id"] == evidence.pk
    assert event["data"]["kind"] == "note"


def test_empty_note_is_refused(dead_letter, operator):
    with pytest.raises(InvalidRequest, match="note is required"):
        services.evidence_add_note(dead_letter=dead_letter(), actor=operator[0], text="   ")
    assert not Evidence.objects.exists()
    assert evidence_events() == []


@pytest.mark.parametrize(
    "url", ["https://tickets.example.com/INC-42", "http://wiki.example.com/runbook#gw"]
)
def test_http_and_https_links_are_accepted(dead_letter, operator, url):
    dl = dead_letter()
    evidence = services.evidence_add_link(
        dead_letter=dl, actor=operator[0], url=url, title="incident"
    )
    assert (evidence.kind, evidence.url, evidence.note) == (EvidenceKind.LINK, url, "incident")
    [event] = evidence_events()
    assert event["data"]["url"] == url


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "ftp://files.example.com/log.txt",
        "file:///etc/passwd",
        "data:text/html,<b>hi</b>",
        "tickets.example.com/INC-42",
        "",
        "https://example.com/" + "a" * 500,
    ],
)
def test_other_links_are_refused(dead_letter, operator, url):
    with pytest.raises(InvalidRequest):
        services.evidence_add_link(dead_letter=dead_letter(), actor=operator[0], url=url)
    assert not Evidence.objects.exists()
    assert evidence_events() == []


def test_file_is_stored_under_a_server_name_with_its_digest(dead_letter, operator, media_root):
    dl = dead_letter()
    content = b"12:00:01 gateway 503\n12:00:02 gateway 503\n"
    upload = SimpleUploadedFile(
        "../../etc/gateway log.TXT", content, content_type="application/x-evil"
    )
    evidence = services.evidence_add_file(dead_letter=dl, actor=operator[0], upload=upload)
    evidence.refresh_from_db()
    assert evidence.kind == EvidenceKind.FILE
    assert evidence.original_name == "gateway log.TXT"  # for display only
    assert evidence.file.name is not None
    assert re.fullmatch(r"evidence/\d{4}/\d{2}/[0-9a-f]{32}\.txt", evidence.file.name)
    assert evidence.sha256 == hashlib.sha256(content).hexdigest()
    assert evidence.size == len(content)
    assert evidence.content_type == "text/plain; charset=utf-8"  # derived, not the client's
    # Stored through Django's storage, in the configured MEDIA_ROOT.
    assert default_storage.exists(evidence.file.name)
    assert (media_root / evidence.file.name).read_bytes() == content
    with evidence.file.open("rb") as handle:
        assert handle.read() == content
    [event] = evidence_events()
    assert event["data"]["sha256"] == evidence.sha256
    assert event["data"]["size"] == len(content)
    assert event["data"]["name"] == "gateway log.TXT"


@pytest.mark.parametrize(
    ("name", "content", "content_type"),
    [
        ("screenshot.png", PNG, "image/png"),
        ("report.pdf", PDF, "application/pdf"),
        ("photo.jpeg", b"\xff\xd8\xff\xe0" + bytes(32), "image/jpeg"),
        ("rows.csv", b"id,status\n1,503\n", "text/csv; charset=utf-8"),
        ("reply.json", b'{"status": 503}', "application/json"),
    ],
)
def test_allowed_kinds_with_matching_content_pass(
    dead_letter, operator, media_root, name, content, content_type
):
    evidence = services.evidence_add_file(
        dead_letter=dead_letter(),
        actor=operator[0],
        upload=SimpleUploadedFile(name, content),
    )
    assert evidence.content_type == content_type
    assert evidence.sha256 == hashlib.sha256(content).hexdigest()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("tool.exe", b"MZ\x90\x00", "not accepted"),
        ("page.html", b"<html></html>", "not accepted"),
        ("noextension", b"hello", "not accepted"),
        ("notes.txt", PNG, "holds png content"),  # a renamed image
        ("notes.txt", b"MZ\x90\x00\x03\x00binary", "unknown or binary"),  # a renamed binary
        ("image.png", b"just some text", "holds text content"),
        ("report.pdf", PNG, "holds png content"),
        ("reply.json", b"{not json", "valid JSON"),
        ("empty.txt", b"", "empty"),
    ],
)
def test_files_whose_name_and_content_disagree_are_refused(
    dead_letter, operator, media_root, name, content, message
):
    with pytest.raises(EvidenceRejected, match=message):
        services.evidence_add_file(
            dead_letter=dead_letter(), actor=operator[0], upload=SimpleUploadedFile(name, content)
        )
    assert not Evidence.objects.exists()
    assert evidence_events() == []
    assert not (media_root / "evidence").exists() or not any((media_root / "evidence").rglob("*"))


def test_file_over_the_size_limit_is_refused(dead_letter, operator, media_root, settings):
    settings.EVIDENCE_MAX_BYTES = 100
    dl = dead_letter()
    services.evidence_add_file(
        dead_letter=dl, actor=operator[0], upload=SimpleUploadedFile("ok.txt", b"x" * 100)
    )
    with pytest.raises(EvidenceRejected, match="larger than"):
        services.evidence_add_file(
            dead_letter=dl, actor=operator[0], upload=SimpleUploadedFile("big.txt", b"x" * 101)
        )

    class Undeclared:  # a stream that does not say its size up front
        name = "big.log"

        def read(self, n=-1):
            return b"y" * (101 if n < 0 else min(n, 101))

    with pytest.raises(EvidenceRejected, match="larger than"):
        services.evidence_add_file(dead_letter=dl, actor=operator[0], upload=Undeclared())
    assert Evidence.objects.count() == 1


def test_refused_row_leaves_no_orphan_file(dead_letter, operator, media_root, monkeypatch):
    """The file is stored before the row; when the row's transaction fails, the file goes."""
    dl = dead_letter()

    def audit_down(**kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(services.evidence, "audit_record", audit_down)
    with pytest.raises(RuntimeError, match="audit store unavailable"):
        services.evidence_add_file(
            dead_letter=dl, actor=operator[0], upload=SimpleUploadedFile("a.txt", b"hello")
        )
    assert not Evidence.objects.exists()  # no row without its audit event...
    assert not any(media_root.rglob("*.txt"))  # ...and no file without its row
    monkeypatch.undo()
    stored = services.evidence_add_file(
        dead_letter=dl, actor=operator[0], upload=SimpleUploadedFile("a.txt", b"hello")
    )
    assert stored.file.name is not None
    assert [p.name for p in media_root.rglob("*.txt")] == [stored.file.name.rsplit("/", 1)[1]]


def test_evidence_is_append_only(dead_letter, operator, media_root):
    dl = dead_letter()
    note = services.evidence_add_note(dead_letter=dl, actor=operator[0], text="first")
    note.note = "rewritten"
    with pytest.raises(PermissionError):
        note.save()
    with pytest.raises(PermissionError):
        note.delete()
    with pytest.raises(PermissionError):
        Evidence.objects.filter(pk=note.pk).update(note="rewritten")
    with pytest.raises(PermissionError), transaction.atomic():
        Evidence.objects.bulk_update([note], ["note"])
    assert Evidence.objects.get(pk=note.pk).note == "first"
    # More evidence is appended; each addition is its own audited event.
    services.evidence_add_note(dead_letter=dl, actor=operator[0], text="second")
    assert list(dl.evidence.order_by("id").values_list("note", flat=True)) == ["first", "second"]
    assert [e["data"]["kind"] for e in evidence_events()] == ["note", "note"]


def test_only_operators_who_see_the_tenant_add_evidence(
    dead_letter, tenant, other_tenant, media_root
):
    dl = dead_letter()
    auditor, _ = create_staff_user("aud", roles=["auditors"])
    elsewhere, _ = create_staff_user("ella", roles=["operators"], tenants=[other_tenant])
    for actor in (auditor, elsewhere):
        with pytest.raises(PermissionDenied):
            services.evidence_add_note(dead_letter=dl, actor=actor, text="hi")
        with pytest.raises(PermissionDenied):
            services.evidence_add_link(dead_letter=dl, actor=actor, url="https://example.com")
        with pytest.raises(PermissionDenied):
            services.evidence_add_file(
                dead_letter=dl, actor=actor, upload=SimpleUploadedFile("a.txt", b"hello")
            )
    assert not Evidence.objects.exists()
    assert not any(media_root.rglob("*.txt"))
    assigned, _ = create_staff_user("tina", roles=["operators"], tenants=[tenant])
    services.evidence_add_note(dead_letter=dl, actor=assigned, text="mine")
    assert Evidence.objects.count() == 1
