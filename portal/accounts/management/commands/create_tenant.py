from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.accounts.services import tenant_create
from portal.audit.services import Actor
from portal.errors import DomainError


class Command(BaseCommand):
    help = "Create a tenant (idempotent: an existing tenant is left as it is) and print it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant, created = tenant_create(
                name=options["name"], actor=Actor.system("manage.py create_tenant")
            )
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        state = "created" if created else "exists"
        self.stdout.write(
            f"tenant {tenant.name} (id {tenant.pk}) {state}: "
            f"rate {tenant.rate_limit_per_minute}/min, "
            f"max open intents {tenant.max_open_intents}, "
            f"targets {'all' if tenant.allow_all_targets else ', '.join(tenant.allowed_targets)}"
        )
