"""``manage.py check_connections [--key K]``: one line per connection; exit 1 if any fails."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gateways.checks import connections_check
from gateways.connections import all_connection_specs


class Command(BaseCommand):
    help = "Resolve each connection's secrets and probe its provider without sending."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--key", default=None, help="check only this connection")

    def handle(self, *args: Any, **options: Any) -> None:
        specs = all_connection_specs()
        if options["key"]:
            specs = [spec for spec in specs if spec.key == options["key"]]
            if not specs:
                raise CommandError(f"no active connection {options['key']!r}")
        results = connections_check(specs=specs)
        for result in results:
            status = "ok  " if result.probe.ok else "FAIL"
            spec = result.spec
            self.stdout.write(
                f"{status} {spec.key} ({spec.config.provider}, {spec.channel}): "
                f"{result.probe.detail}"
            )
        failed = [r.spec.key for r in results if not r.probe.ok]
        if failed:
            raise CommandError(f"{len(failed)} of {len(results)} failed: {', '.join(failed)}")
