"""``manage.py backup --output FILE``: a consistent snapshot of the database with its manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.audit.services import Actor
from portal.backups.errors import BackupError
from portal.backups.services import backup_create


class Command(BaseCommand):
    help = (
        "Write a consistent snapshot of the database (SQLite online backup or pg_dump custom "
        "format), the evidence files its rows name and a manifest of row counts and the "
        "audit head, as one tar archive."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", required=True, type=Path, metavar="FILE")

    def handle(self, *args: Any, **options: Any) -> None:
        output = options["output"]
        try:
            manifest = backup_create(output=output, actor=Actor.system("backup command"))
        except BackupError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        self.stdout.write(
            f"OK: {output} ({manifest.vendor}, {sum(manifest.counts.values())} rows in "
            f"{len(manifest.counts)} tables, {len(manifest.media)} files, audit head "
            f"#{manifest.audit_head.sequence})"
        )
