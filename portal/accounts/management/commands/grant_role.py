"""``manage.py grant_role USERNAME ROLE [--revoke]``: the only way roles change."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.accounts.invitations import staff_user_get
from portal.accounts.roles import ALL_ROLES
from portal.accounts.users import role_grant
from portal.audit.services import Actor
from portal.errors import DomainError


class Command(BaseCommand):
    help = (
        "Grant (or with --revoke remove) a staff role. Roles change only here, never in "
        "the admin, so no portal user can make anyone an approver or platform admin."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("role", choices=ALL_ROLES)
        parser.add_argument("--revoke", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user = staff_user_get(options["username"])
            changed = role_grant(
                user=user,
                role=options["role"],
                actor=Actor.system("manage.py grant_role"),
                revoke=options["revoke"],
            )
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        verb = "revoked from" if options["revoke"] else "granted to"
        state = "" if changed else " (no change)"
        self.stdout.write(f"{options['role']} {verb} {user.get_username()}{state}")
