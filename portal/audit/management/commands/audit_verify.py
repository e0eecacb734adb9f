"""``manage.py audit_verify``: exit 0 when the audit chain is intact, else name the first break."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from portal.audit.selectors import audit_chain_verify


class Command(BaseCommand):
    help = "Verify the audit history's hash chain; exit 1 naming the first broken event."

    def handle(self, *args: Any, **options: Any) -> None:
        result = audit_chain_verify()
        if not result.intact:
            raise CommandError(
                f"audit chain broken at event #{result.broken_sequence}: {result.reason} "
                f"({result.count} events verified before it)",
                returncode=1,
            )
        self.stdout.write(f"OK: {result.count} events, chain intact")
