from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from portal.observability.reconciliation import DEFAULT_LIMIT, MANUAL_REVIEW, reconcile_timeouts
from portal.timefmt import format_instant


class Command(BaseCommand):
    help = (
        "List intents whose last attempt timed out (the gateway may have accepted them). "
        "With --resolve, ask gateways whose adapter has query_status() and record the "
        "confirmed acceptances; the others need a manual check with the provider."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--resolve", action="store_true", help="ask the gateways and record")
        parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT)

    def handle(self, *args: Any, **options: Any) -> None:
        items = reconcile_timeouts(resolve=bool(options["resolve"]), limit=int(options["limit"]))
        if not items:
            self.stdout.write("no intent whose last attempt timed out")
            return
        for item in items:
            last = format_instant(item.last_attempt_at)
            self.stdout.write(
                f"{item.public_id} {item.target_key} via {item.gateway} [{item.status}] "
                f"last attempt {last}: {item.action}: {item.detail}"
            )
        tally = Counter(item.action for item in items)
        self.stdout.write(", ".join(f"{n} {action}" for action, n in sorted(tally.items())))
        if tally.get(MANUAL_REVIEW):
            self.stdout.write(
                f"{tally[MANUAL_REVIEW]} need manual review: their gateway adapter cannot be "
                "asked; see 'Gateway outage' in docs/runbooks.md"
            )
