"""``manage.py invite_staff USERNAME``: a one-time enrolment link, shown once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from portal.accounts.invitations import invitation_issue, staff_user_get
from portal.audit.services import Actor
from portal.cli import positive
from portal.errors import DomainError


class Command(BaseCommand):
    help = (
        "Invite a staff user to enrol an authenticator: prints a one-time link (path) on "
        "the last line, valid for STAFF_INVITATION_TTL_S. Earlier open invitations end."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--ttl", type=positive(float), help="seconds the link stays valid")

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["username"].strip()
        try:
            user = staff_user_get(username)
            invitation, token = invitation_issue(
                user=user, actor=Actor.system("manage.py invite_staff"), ttl_s=options["ttl"]
            )
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(
            f"Invitation for {user.get_username()}, valid until "
            f"{invitation.expires_at:%Y-%m-%d %H:%M:%S} UTC. Give them this link once "
            "(prefixed with the portal's address); they log in with their password and "
            "enrol an authenticator:"
        )
        self.stdout.write(reverse("accounts:invitation", args=[token]))
