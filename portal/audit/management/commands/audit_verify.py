"""``manage.py audit_verify``: exit 0 when the audit chain is intact, else name the first break."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from portal.audit.selectors import audit_chain_verify
from portal.observability.logging import get_logger

logger = get_logger("portal.audit")


class Command(BaseCommand):
    help = "Verify the audit history's hash chain; exit 1 naming the first broken event."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--expect-at-least",
            type=int,
            metavar="N",
            help="a head sequence seen earlier outside the database (the metric "
            "portal_audit_head_sequence or the audit.head log line): fail if the chain "
            "now ends before it",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        expected = options.get("expect_at_least")
        if expected is not None and expected < 0:
            raise CommandError("--expect-at-least must be 0 or more.", returncode=2)
        result = audit_chain_verify(expect_at_least=expected)
        if not result.intact:
            raise CommandError(
                f"audit chain broken at event #{result.broken_sequence}: {result.reason} "
                f"({result.count} events verified before it)",
                returncode=1,
            )
        logger.info("audit.head", sequence=result.count)
        self.stdout.write(f"OK: {result.count} events, chain intact")
