from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from portal.observability.retention import DEFAULT_BATCH_SIZE, retention_purge


class Command(BaseCommand):
    help = (
        "Purge terminal intents (and attempts) older than RETENTION_INTENT_DAYS, finished "
        "dead letters past their retention (and evidence files), stale heartbeats. "
        "Audit events are never purged."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="count only; change nothing")
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
        parser.add_argument(
            "--max-batches", type=int, default=None, help="stop after this many batches"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = retention_purge(
            dry_run=bool(options["dry_run"]),
            batch_size=int(options["batch_size"]),
            max_batches=options["max_batches"],
        )
        verb = "would purge" if report.dry_run else "purged"
        self.stdout.write(
            f"intents finished before {report.intent_cutoff.isoformat()} are past retention"
        )
        for kind, count in report.counts().items():
            self.stdout.write(f"{verb} {kind}: {count}")
        if not report.complete:
            self.stdout.write("stopped at --max-batches; more remains past retention")
