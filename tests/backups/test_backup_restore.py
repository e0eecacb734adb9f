"""``backup`` / ``restore`` through the commands, on the suite's real database (SQLite or PostgreSQL).

Transactional tests: the snapshot (and ``pg_dump``) read committed data only.
"""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError

from deadletters.models import DeadLetter, Evidence
from deadletters.services import evidence_add_file
from intents.models import Intent
from portal.audit.models import AuditEvent
from portal.audit.selectors import audit_chain_verify
from tests.deadletters.conftest import (  # noqa: F401  (fixtures)
    dead_letter,
    dead_lettered,
    media_root,
    operator,
)
from tests.engine.conftest import scripted, submit  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


def run(command: str, *args: str) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def refused(command: str, *args: str) -> CommandError:
    with pytest.raises(CommandError) as caught:
        run(command, *args)
    return caught.value


def lose_intents() -> None:
    """Delete the intents and what hangs off them (dead letters protect their intent)."""
    Evidence.objects.all().delete()
    DeadLetter.objects.all().delete()
    Intent.objects.all().delete()


def member(archive: tarfile.TarFile, name: str) -> bytes:
    handle = archive.extractfile(name)
    assert handle is not None, name
    return handle.read()


def manifest_of(path) -> dict:
    with tarfile.open(path) as archive:
        return json.loads(member(archive, "manifest.json"))


def newest_event() -> AuditEvent:
    return AuditEvent.objects.latest("sequence")


@pytest.fixture
def stored(dead_letter, operator, media_root):  # noqa: F811
    """A dead letter with an evidence file: intents, attempts, audit events and a file."""
    letter = dead_letter()
    evidence = evidence_add_file(
        dead_letter=letter,
        actor=operator[0],
        upload=SimpleUploadedFile("gateway.log", b"503 from the gateway at 12:00\n"),
    )
    return letter, evidence


def test_backup_then_restore_into_an_emptied_database_gives_back_every_row_and_file(
    stored, tmp_path
):
    letter, evidence = stored
    archive = tmp_path / "portal.backup"
    out = run("backup", "--output", str(archive))
    assert out.startswith(f"OK: {archive}")
    manifest = manifest_of(archive)
    assert manifest["counts"]["intents_intent"] == 1
    assert manifest["counts"]["deadletters_deadletter"] == 1
    assert manifest["media"] == {evidence.file.name: evidence.sha256}
    head = newest_event()
    # the backup's own audit event comes after the snapshot, so it is not in the manifest
    assert head.action == "backup.created"
    assert manifest["audit_head"] == {"sequence": head.sequence - 1, "hash": head.prev_hash}

    # lose the data: rows and the evidence file
    lose_intents()
    default_storage.delete(evidence.file.name)
    error = refused("restore", "--input", str(archive))  # audit events are still there
    assert "not empty" in str(error) and "--force" in str(error)
    assert error.returncode == 2

    out = run("restore", "--input", str(archive), "--force")
    assert "audit chain intact" in out
    assert DeadLetter.objects.get().public_id == letter.public_id
    assert Intent.objects.count() == 1
    restored = Evidence.objects.get(pk=evidence.pk)
    with default_storage.open(str(restored.file.name), "rb") as handle:
        assert handle.read() == b"503 from the gateway at 12:00\n"
    assert audit_chain_verify().intact
    assert newest_event().action == "backup.restored"


def test_restore_refuses_a_database_with_data_and_changes_nothing(stored, tmp_path):
    archive = tmp_path / "portal.backup"
    run("backup", "--output", str(archive))
    before = AuditEvent.objects.count()
    error = refused("restore", "--input", str(archive))
    assert error.returncode == 2
    assert AuditEvent.objects.count() == before
    assert Intent.objects.count() == 1


def test_a_manifest_that_does_not_match_the_snapshot_fails_verification(stored, tmp_path):
    archive = tmp_path / "portal.backup"
    run("backup", "--output", str(archive))
    tampered = tmp_path / "tampered.backup"
    with tarfile.open(archive) as source, tarfile.open(tampered, "w") as target:
        for entry in source.getmembers():
            content = member(source, entry.name)
            if entry.name == "manifest.json":
                data = json.loads(content)
                data["counts"]["intents_intent"] = 7
                content = json.dumps(data).encode()
                entry.size = len(content)
            target.addfile(entry, io.BytesIO(content))
    error = refused("restore", "--input", str(tampered), "--force")
    assert error.returncode == 1
    assert "intents_intent: 1 rows, manifest 7" in str(error)


def test_a_changed_evidence_file_in_the_archive_is_refused_before_anything_is_replaced(
    stored, tmp_path
):
    _, evidence = stored
    archive = tmp_path / "portal.backup"
    run("backup", "--output", str(archive))
    tampered = tmp_path / "tampered.backup"
    with tarfile.open(archive) as source, tarfile.open(tampered, "w") as target:
        for entry in source.getmembers():
            content = member(source, entry.name)
            if entry.name.startswith("media/"):
                content = b"rewritten\n"
                entry.size = len(content)
            target.addfile(entry, io.BytesIO(content))
    lose_intents()
    error = refused("restore", "--input", str(tampered), "--force")
    assert error.returncode == 2
    assert evidence.file.name in str(error)
    assert Intent.objects.count() == 0  # nothing was restored


@pytest.mark.parametrize(
    ("make_input", "reason"),
    [
        (lambda tmp: tmp / "missing.backup", "no such file"),
        (lambda tmp: _write(tmp / "text.backup", b"not a tar file"), "not a backup archive"),
        (lambda tmp: _tar(tmp / "empty.backup", {}), "has no manifest.json"),
        (
            lambda tmp: _tar(tmp / "future.backup", {"manifest.json": b'{"format_version": 9}'}),
            "unsupported backup format 9",
        ),
        (
            lambda tmp: _tar(
                tmp / "other.backup",
                {"manifest.json": json.dumps(_manifest(vendor="oracle")).encode()},
            ),
            "unknown database vendor 'oracle'",
        ),
    ],
)
def test_bad_input_is_refused_with_a_one_line_reason(tmp_path, make_input, reason):
    error = refused("restore", "--input", str(make_input(tmp_path)))
    assert reason in str(error)
    assert "\n" not in str(error)
    assert error.returncode == 2


def test_a_backup_of_another_vendor_is_refused(tmp_path):
    from django.db import connection

    other = "postgresql" if connection.vendor == "sqlite" else "sqlite"
    path = _tar(tmp_path / "x.backup", {"manifest.json": json.dumps(_manifest(other)).encode()})
    error = refused("restore", "--input", str(path))
    assert f"the backup is of a {other} database; this one is {connection.vendor}" in str(error)


def test_backup_to_a_missing_directory_is_refused_and_leaves_no_file(tmp_path):
    error = refused("backup", "--output", str(tmp_path / "nowhere" / "portal.backup"))
    assert "no such directory" in str(error)
    assert error.returncode == 2
    assert not (tmp_path / "nowhere").exists()


def test_a_failed_snapshot_leaves_no_archive_under_the_name(tmp_path, monkeypatch):
    from portal.backups import snapshots
    from portal.backups.errors import BackupError

    def broken(self, destination):
        destination.write_bytes(b"partial")
        raise BackupError("disk full")

    for cls in (snapshots.SqliteSnapshot, snapshots.PostgresSnapshot):
        monkeypatch.setattr(cls, "take", broken)
    error = refused("backup", "--output", str(tmp_path / "portal.backup"))
    assert str(error) == "disk full"
    assert list(tmp_path.iterdir()) == []


def _manifest(vendor: str) -> dict:
    return {
        "format_version": 1,
        "vendor": vendor,
        "created_at": "2026-01-05T12:00:00+00:00",
        "counts": {},
        "audit_head": {"sequence": 0, "hash": ""},
        "media": {},
    }


def _write(path, content: bytes):
    path.write_bytes(content)
    return path


def _tar(path, members: dict[str, bytes]):
    with tarfile.open(path, "w") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return path
