"""``backup`` and ``restore``: the business rules behind the two commands.

A backup is written next to its destination under a temporary name and renamed into
place only when complete, so an interrupted run never leaves a half-written archive
under the requested name. A restore refuses a database that already holds data unless
forced, reads only the archive members the manifest names (never ``extractall``), and
afterwards checks the restored rows against the manifest and the audit chain against
its recorded head.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tempfile
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection

from portal import clock
from portal.audit.selectors import audit_chain_verify
from portal.audit.services import Actor, audit_record

from .errors import BackupError, RestoreVerificationError
from .manifest import MANIFEST_NAME, MEDIA_PREFIX, Manifest, user_rows
from .snapshots import live_counts, snapshot_for_vendor, temporary_path


def backup_create(*, output: Path, actor: Actor) -> Manifest:
    """Snapshot the database (and the files its rows name) into the tar archive ``output``."""
    directory = output.parent
    if not directory.is_dir():
        raise BackupError(f"{directory}: no such directory")
    if output.is_dir():
        raise BackupError(f"{output} is a directory; give a file name")
    snapshot = snapshot_for_vendor(connection.vendor)
    created_at = clock.now().isoformat()
    with (
        temporary_path(directory, ".db") as database_copy,
        temporary_path(directory, ".tar") as archive_path,
    ):
        facts = snapshot.take(database_copy)
        media = _file_digests(facts.file_names)
        manifest = Manifest(
            vendor=snapshot.vendor,
            created_at=created_at,
            counts=facts.counts,
            audit_head=facts.audit_head,
            media=media,
        )
        with tarfile.open(archive_path, "w") as archive:
            _add_bytes(archive, MANIFEST_NAME, manifest.to_json())
            archive.add(database_copy, arcname=manifest.database_member)
            for name in media:
                with default_storage.open(name, "rb") as handle:
                    _add_bytes(archive, MEDIA_PREFIX + name, handle.read())
        os.replace(archive_path, output)
    audit_record(
        actor=actor,
        action="backup.created",
        object_type="backup",
        object_id=output.name[:64],
        data={
            "vendor": manifest.vendor,
            "rows": sum(manifest.counts.values()),
            "files": len(media),
            "audit_head_sequence": manifest.audit_head.sequence,
            "sha256": _sha256_file(output),
        },
    )
    return manifest


def backup_restore(*, source: Path, force: bool, actor: Actor) -> Manifest:
    """Replace the database with the archive ``source``; verify it; audit the restore."""
    if not source.is_file():
        raise BackupError(f"{source}: no such file")
    try:
        # Plain tar only (what `backup` writes); closed by the `with` below.
        archive = tarfile.open(source, "r:")  # noqa: SIM115
    except (tarfile.TarError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BackupError(f"{source} is not a backup archive ({reason})") from exc
    with archive, tempfile.TemporaryDirectory() as scratch:
        manifest = Manifest.from_json(_member_bytes(archive, MANIFEST_NAME))
        if manifest.vendor != connection.vendor:
            raise BackupError(
                f"the backup is of a {manifest.vendor} database; this one is {connection.vendor}"
            )
        media = {name: _member_bytes(archive, MEDIA_PREFIX + name) for name in manifest.media}
        for name, content in media.items():
            if hashlib.sha256(content).hexdigest() != manifest.media[name]:
                raise BackupError(f"the archive's copy of {name} does not match its manifest")
        database_copy = Path(scratch) / manifest.database_member
        database_copy.write_bytes(_member_bytes(archive, manifest.database_member))
        occupied = user_rows(live_counts())
        if occupied and not force:
            tables = ", ".join(sorted(occupied)[:3])
            raise BackupError(
                f"the database is not empty ({sum(occupied.values())} rows, e.g. in {tables}); "
                "pass --force to replace it"
            )
        snapshot_for_vendor(connection.vendor).restore(database_copy)
    for name, content in media.items():
        if default_storage.exists(name):
            default_storage.delete(name)
        default_storage.save(name, ContentFile(content))
    restore_verify(manifest)
    audit_record(
        actor=actor,
        action="backup.restored",
        object_type="backup",
        object_id=source.name[:64],
        data={
            "vendor": manifest.vendor,
            "backup_created_at": manifest.created_at,
            "rows": sum(manifest.counts.values()),
            "files": len(media),
            "audit_head_sequence": manifest.audit_head.sequence,
            "forced": force,
        },
    )
    return manifest


def restore_verify(manifest: Manifest) -> None:
    """The restored database holds the manifest's rows and an intact chain ending at its head."""
    counts = live_counts()
    differing = [
        f"{table}: {counts.get(table, 0)} rows, manifest {expected}"
        for table, expected in sorted(manifest.counts.items())
        if counts.get(table, 0) != expected
    ]
    if differing:
        raise RestoreVerificationError(
            "restored rows differ from the manifest: " + "; ".join(differing[:3])
        )
    head = manifest.audit_head
    verification = audit_chain_verify(expect_at_least=head.sequence)
    if not verification.intact:
        raise RestoreVerificationError(
            f"restored audit chain broken at event #{verification.broken_sequence}: "
            f"{verification.reason}"
        )
    if verification.count != head.sequence:
        raise RestoreVerificationError(
            f"restored audit chain has {verification.count} events, manifest {head.sequence}"
        )


def _file_digests(names: list[str]) -> dict[str, str]:
    digests = {}
    for name in names:
        if not default_storage.exists(name):
            raise BackupError(f"a row names the file {name}, which the storage does not hold")
        with default_storage.open(name, "rb") as handle:
            digests[name] = hashlib.sha256(handle.read()).hexdigest()
    return digests


def _add_bytes(archive: tarfile.TarFile, name: str, content: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    info.mtime = int(clock.now().timestamp())
    archive.addfile(info, io.BytesIO(content))


def _member_bytes(archive: tarfile.TarFile, name: str) -> bytes:
    try:
        member = archive.getmember(name)
    except KeyError:
        raise BackupError(f"the archive has no {name}") from None
    handle = archive.extractfile(member) if member.isfile() else None
    if handle is None:
        raise BackupError(f"the archive's {name} is not a regular file")
    with handle:
        return handle.read()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
