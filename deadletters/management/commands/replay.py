"""``manage.py replay plan|request|approve|reject``: replays from the shell (CONTRACT.md).

Thin: every rule lives in ``deadletters.services``; a refusal is one line on stderr and a
non-zero exit status.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from deadletters import selectors, services
from deadletters.filters import ReplayFilters
from deadletters.models import DEAD_LETTER_REASONS, ReplayRequest, ReplayStatus
from portal.errors import DomainError
from portal.timefmt import format_instant


def _add_filters(parser: argparse.ArgumentParser, *, reason_flags: tuple[str, ...]) -> None:
    parser.add_argument(
        *reason_flags,
        dest="reason_code",
        metavar="R",
        help=f"dead-letter reason: {', '.join(DEAD_LETTER_REASONS)}",
    )
    parser.add_argument("--target", metavar="T", help="target key, e.g. sms.otp")
    parser.add_argument("--tenant", metavar="N", help="tenant name (or id)")
    parser.add_argument("--since", metavar="ISO", help="dead-lettered at or after this time")
    parser.add_argument("--until", metavar="ISO", help="dead-lettered before this time")


class Command(BaseCommand):
    help = "Plan, request, approve or reject replays of dead letters."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

        plan = actions.add_parser("plan", help="list the open dead letters a filter matches")
        _add_filters(plan, reason_flags=("--reason", "--reason-code"))
        plan.add_argument("--limit", type=int, default=50, help="dead letters to list")
        plan.add_argument(
            "--dead-letters", metavar="ID,…", help="only these dead letters (comma-separated ids)"
        )

        request = actions.add_parser("request", help="ask for a replay; prints the request id")
        request.add_argument("--user", required=True, metavar="U", help="the requesting operator")
        request.add_argument("--reason", required=True, metavar="TEXT", help="why replay")
        request.add_argument(
            "--dead-letters", metavar="ID,…", help="comma-separated dead letter ids"
        )
        _add_filters(request, reason_flags=("--reason-code",))

        approve = actions.add_parser("approve", help="approve a request (not your own)")
        approve.add_argument("request_id", metavar="ID")
        approve.add_argument("--user", required=True, metavar="U", help="the approver")
        approve.add_argument("--otp", required=True, metavar="CODE", help="a fresh TOTP code")

        show = actions.add_parser("show", help="a request's status and each item's outcome")
        show.add_argument("request_id", metavar="ID")

        reject = actions.add_parser("reject", help="reject a request (not your own)")
        reject.add_argument("request_id", metavar="ID")
        reject.add_argument("--user", required=True, metavar="U", help="the approver")
        reject.add_argument("--otp", required=True, metavar="CODE", help="a fresh TOTP code")
        reject.add_argument("--reason", required=True, metavar="TEXT", help="why not")

    def handle(self, *args: Any, **options: Any) -> None:
        handler = getattr(self, f"_{options['action']}")
        try:
            handler(options)
        except DomainError as exc:
            raise CommandError(exc.detail) from None

    # --- actions

    def _plan(self, options: dict[str, Any]) -> None:
        filters = ReplayFilters.from_input(options, reason="reason_code")
        if not filters.reason_code and not filters.dead_letter_ids:
            raise CommandError(
                "replay plan needs --reason (a dead-letter reason code) or --dead-letters."
            )
        plan = services.replay_plan(filters=filters)
        listed = selectors.open_dead_letters_matching(filters=filters).select_related(
            "intent", "tenant"
        )[: max(options["limit"], 0)]
        for dead_letter in listed:
            self.stdout.write(
                f"{dead_letter.public_id}  {format_instant(dead_letter.created_at)}  "
                f"{dead_letter.tenant.name}  {dead_letter.target_key}  "
                f"{dead_letter.reason_code}  intent {dead_letter.intent.public_id}"
            )
        if plan.count > options["limit"]:
            self.stdout.write(f"… and {plan.count - options['limit']} more")
        for public_id, why in plan.left_out:
            self.stdout.write(f"{public_id}  left out: {why}")
        self.stdout.write(f"{plan.count} open dead letter(s) match {filters.describe()}")

    def _request(self, options: dict[str, Any]) -> None:
        user = self._user(options["user"])
        # Chosen ids go to the request as a list (checked there), not as a filter.
        filters = ReplayFilters.from_input({**options, "dead_letters": None}, reason="reason_code")
        raw_ids = options.get("dead_letters")
        if raw_ids and filters != ReplayFilters():
            raise CommandError("Give either --dead-letters or filters, not both.")
        if raw_ids:
            ids = [part for part in raw_ids.split(",") if part.strip()]
            request = services.replay_request_create(
                requested_by=user, reason=options["reason"], dead_letter_ids=ids
            )
        else:
            if filters == ReplayFilters():
                raise CommandError(
                    "Give --dead-letters or at least one filter "
                    "(--reason-code, --target, --tenant, --since, --until)."
                )
            request = services.replay_request_create(
                requested_by=user, reason=options["reason"], filters=filters
            )
        count = request.items.count()
        self.stdout.write(
            f"replay request of {count} dead letter(s) waits for a second person's approval "
            f"until {format_instant(request.expires_at)}"
        )
        self.stdout.write(str(request.public_id))

    def _approve(self, options: dict[str, Any]) -> None:
        user = self._user(options["user"])
        request = selectors.replay_request_get(public_id=options["request_id"], user=user)
        request = services.replay_request_approve(
            request=request, approver=user, otp_token=options["otp"]
        )
        self.stdout.write(f"approved replay request {request.public_id}; execution queued")
        request.refresh_from_db()
        if request.status == ReplayStatus.DONE:  # a synchronous queue has run it already
            self._write_outcomes(request)

    def _show(self, options: dict[str, Any]) -> None:
        request = selectors.replay_request_get(public_id=options["request_id"])
        decided = f", decided by {request.decided_by.get_username()}" if request.decided_by else ""
        self.stdout.write(
            f"replay request {request.public_id}: {request.status}, requested by "
            f"{request.requested_by.get_username()} at {format_instant(request.created_at)}"
            f"{decided}"
        )
        self._write_outcomes(request)

    def _write_outcomes(self, request: ReplayRequest) -> None:
        results = selectors.replay_item_results(
            items=list(selectors.replay_request_items(request=request))
        )
        for result in results:
            line = (
                f"{result.item.dead_letter.public_id}  intent "
                f"{result.item.dead_letter.intent.public_id}  {result.outcome}"
            )
            if result.detail:
                line += f": {result.detail}"
            if result.new_dead_letter is not None:
                line += f" (new dead letter {result.new_dead_letter.public_id})"
            self.stdout.write(line)
        counts = selectors.replay_result_counts(results)
        self.stdout.write(", ".join(f"{outcome}: {n}" for outcome, n in counts) or "no items")

    def _reject(self, options: dict[str, Any]) -> None:
        user = self._user(options["user"])
        request = selectors.replay_request_get(public_id=options["request_id"], user=user)
        request = services.replay_request_reject(
            request=request, approver=user, otp_token=options["otp"], reason=options["reason"]
        )
        self.stdout.write(f"rejected replay request {request.public_id}")

    # --- helpers

    def _user(self, username: str) -> Any:
        user = get_user_model().objects.filter(username=username).first()
        if user is None or not user.is_active or not user.is_staff:
            raise CommandError(f"No active staff user {username!r}.")
        return user
