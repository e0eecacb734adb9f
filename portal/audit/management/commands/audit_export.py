"""``manage.py audit_export --format csv|jsonl [--since ISO] [--output FILE]``."""

from __future__ import annotations

import datetime as dt
import getpass
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.audit.export import FORMATS, iter_export
from portal.audit.selectors import audit_events
from portal.audit.services import Actor, audit_export_begin


def parse_since(value: str) -> dt.datetime:
    """An ISO 8601 date or date-time; without an offset it is taken as UTC."""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"--since {value!r} is not an ISO 8601 date or date-time "
            "(e.g. 2026-01-31 or 2026-01-31T12:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


class Command(BaseCommand):
    help = "Export the audit history as CSV or JSON Lines (to stdout or --output FILE)."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        default_error = parser.error

        def one_line_error(message: str) -> None:
            if parser.called_from_command_line:
                parser.exit(2, f"audit_export: error: {message}\n")
            default_error(message)

        parser.error = one_line_error  # type: ignore[method-assign]
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", dest="fmt", help="csv or jsonl (required)")
        parser.add_argument("--since", help="only events at or after this ISO 8601 time")
        parser.add_argument("--output", help="write to this file instead of stdout")

    def handle(
        self, *args: Any, fmt: str | None, since: str | None, output: str | None, **options: Any
    ) -> None:
        if fmt not in FORMATS:
            raise CommandError(f"--format must be one of: {', '.join(FORMATS)} (got {fmt!r})")
        since_at = parse_since(since) if since else None
        try:
            file: TextIO | None = (
                open(output, "w", encoding="utf-8", newline="")  # noqa: SIM115
                if output
                else None
            )
        except OSError as exc:
            raise CommandError(f"cannot write {output}: {exc.strerror}") from None

        marker = audit_export_begin(
            actor=Actor.system(f"cli:{getpass.getuser()}"),
            fmt=fmt,
            since=since_at,
            filters={"output": "file" if output else "stdout"},
        )
        events = audit_events(since=since_at, up_to_sequence=marker.sequence - 1)
        count = 0
        try:
            for line in iter_export(events.iterator(chunk_size=2000), fmt):
                if file is not None:
                    file.write(line)
                else:
                    self.stdout.write(line, ending="")
                count += 1
        finally:
            if file is not None:
                file.close()
        if output:
            rows = count - 1 if fmt == "csv" else count
            self.stderr.write(f"exported {rows} events to {output}")
