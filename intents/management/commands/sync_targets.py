from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from intents.errors import RegistryError
from intents.registry import registry_sync


class Command(BaseCommand):
    help = (
        "Load the target registry, connection and escalation files; a bad file applies "
        "nothing and names its path."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dir", type=Path, default=None, help="folder of *.toml files")
        parser.add_argument(
            "--connections-dir",
            type=Path,
            default=None,
            help="folder of connection *.toml files (default CONNECTIONS_DIR)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        directory = options["dir"] or Path(settings.TARGETS_DIR)
        try:
            report = registry_sync(
                directory=directory,
                actor_label="sync_targets",
                connections_directory=options["connections_dir"],
            )
        except RegistryError as exc:
            raise CommandError(f"nothing applied: {exc.detail}") from None
        for label, keys in (
            ("created", report.created),
            ("revised", report.revised),
            ("retired", report.retired),
            ("unchanged", report.unchanged),
        ):
            if keys:
                self.stdout.write(f"{label}: {', '.join(keys)}")
        connections = report.connections
        for label, keys in (
            ("connections created", connections.created),
            ("connections revised", connections.revised),
            ("connections retired", connections.retired),
            ("connections unchanged", connections.unchanged),
        ):
            if keys:
                self.stdout.write(f"{label}: {', '.join(keys)}")
        for other in report.others:
            for change in ("created", "revised", "retired", "unchanged"):
                keys = getattr(other, change)
                if keys:
                    self.stdout.write(f"{other.label} {change}: {', '.join(keys)}")
