"""``manage.py tenant_state <name> --disable|--enable``: stop or resume a tenant's intake."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.accounts.models import Tenant
from portal.accounts.services import tenant_set_active
from portal.audit.services import Actor


class Command(BaseCommand):
    help = (
        "Disable a tenant (its API keys are refused with 401, already accepted intents "
        "are still delivered) or enable it again; audited. Without a flag, print its state."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="the tenant's name")
        state = parser.add_mutually_exclusive_group()
        state.add_argument("--disable", action="store_true", help="refuse its API keys")
        state.add_argument("--enable", action="store_true", help="accept its API keys again")
        parser.add_argument("--reason", default="", help="why (kept in the audit event)")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(name=options["name"]).first()
        if tenant is None:
            raise CommandError(f"No tenant {options['name']!r}.")
        if options["disable"] or options["enable"]:
            tenant, changed = tenant_set_active(
                tenant=tenant,
                active=bool(options["enable"]),
                actor=Actor.system("manage.py tenant_state"),
                reason=options["reason"],
            )
            verb = "is now" if changed else "was already"
        else:
            verb = "is"
        state = "enabled" if tenant.is_active else "disabled"
        self.stdout.write(f"tenant {tenant.name} {verb} {state}")
