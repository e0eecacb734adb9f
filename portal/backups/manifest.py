"""What a backup archive promises about itself, checked again after a restore.

The archive is a tar file holding ``manifest.json``, the database snapshot (an SQLite
database file or a ``pg_dump`` custom-format dump) and the files the snapshot's
``FileField`` rows name (dead-letter evidence), under ``media/``. The manifest is written
from the snapshot itself, not from the live database, so its row counts and audit head
describe exactly what the archive restores.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from django.apps import apps
from django.db import models

from .errors import BackupError

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
MEDIA_PREFIX = "media/"
DATABASE_MEMBER = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}

# Rows the migrations themselves write: a freshly migrated database holds them, and is
# still "empty" for `restore`.
SCHEMA_SEEDED_TABLES = frozenset(
    {"django_content_type", "auth_permission", "auth_group", "audit_auditchainhead"}
)


@dataclasses.dataclass(frozen=True)
class AuditHead:
    sequence: int
    hash: str


@dataclasses.dataclass(frozen=True)
class Manifest:
    vendor: str
    created_at: str
    counts: dict[str, int]
    audit_head: AuditHead
    media: dict[str, str]  # storage name -> SHA-256 of the file's bytes
    format_version: int = FORMAT_VERSION

    @property
    def database_member(self) -> str:
        return DATABASE_MEMBER[self.vendor]

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            data = json.loads(raw)
            if data.get("format_version") != FORMAT_VERSION:
                raise BackupError(
                    f"unsupported backup format {data.get('format_version')!r} "
                    f"(this version reads {FORMAT_VERSION})"
                )
            if data["vendor"] not in DATABASE_MEMBER:
                raise BackupError(f"unknown database vendor {data['vendor']!r} in the manifest")
            head = data["audit_head"]
            return cls(
                vendor=str(data["vendor"]),
                created_at=str(data["created_at"]),
                counts={str(k): int(v) for k, v in data["counts"].items()},
                audit_head=AuditHead(sequence=int(head["sequence"]), hash=str(head["hash"])),
                media={str(k): str(v) for k, v in data.get("media", {}).items()},
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BackupError(f"the manifest is not valid: {exc!r}") from exc


def backed_up_tables() -> list[str]:
    """Every table of an installed, managed, concrete model (m2m tables included), sorted."""
    tables: set[str] = set()
    for model in apps.get_models(include_auto_created=True):
        opts = model._meta
        if opts.managed and not opts.proxy and not opts.swapped:
            tables.add(opts.db_table)
    return sorted(tables)


def file_columns() -> list[tuple[str, str]]:
    """(table, column) of every ``FileField``: the rows whose files travel with the backup."""
    columns = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, models.FileField):
                columns.append((model._meta.db_table, str(field.column)))
    return sorted(columns)


def user_rows(counts: dict[str, int]) -> dict[str, int]:
    """The counts that make a database "not empty": everything but migration-seeded rows."""
    return {t: n for t, n in counts.items() if n and t not in SCHEMA_SEEDED_TABLES}


def audit_head_of(rows: list[Any]) -> AuditHead:
    if not rows:
        return AuditHead(sequence=0, hash="")
    sequence, digest = rows[0]
    return AuditHead(sequence=int(sequence), hash=str(digest))
