"""``manage.py restore --input FILE [--force]``: replace the database with a backup, then verify."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.audit.services import Actor
from portal.backups.errors import BackupError, RestoreVerificationError
from portal.backups.services import backup_restore


class Command(BaseCommand):
    help = (
        "Restore a `backup` archive. Refuses a database that holds data unless --force; "
        "afterwards checks the rows against the manifest and runs the audit chain check."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--input", required=True, type=Path, metavar="FILE")
        parser.add_argument(
            "--force", action="store_true", help="replace a database that already holds data"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            manifest = backup_restore(
                source=options["input"],
                force=bool(options["force"]),
                actor=Actor.system("restore command"),
            )
        except RestoreVerificationError as exc:
            raise CommandError(f"restored, but verification failed: {exc}", returncode=1) from exc
        except BackupError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        self.stdout.write(
            f"OK: restored {sum(manifest.counts.values())} rows and {len(manifest.media)} files "
            f"from the backup of {manifest.created_at}; audit chain intact to "
            f"#{manifest.audit_head.sequence}"
        )
