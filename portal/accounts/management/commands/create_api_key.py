from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.accounts.models import ALL_SCOPES, Tenant
from portal.accounts.services import api_key_create
from portal.audit.services import Actor
from portal.errors import DomainError


class Command(BaseCommand):
    help = (
        "Create an API key for a tenant. The key is shown once, alone on the last line "
        "of stdout (so `| tail -n1` captures it); only its hash is stored."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True, help="Tenant name.")
        parser.add_argument(
            "--scopes",
            default=",".join(ALL_SCOPES),
            help=f"Comma-separated scopes (default: all: {','.join(ALL_SCOPES)}).",
        )
        parser.add_argument("--name", default="", help="A label for the key (max 50 chars).")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(name=options["tenant"]).first()
        if tenant is None:
            raise CommandError(
                f"Unknown tenant {options['tenant']!r}; create it with create_tenant first."
            )
        name = options["name"] or f"{tenant.name} key"[:50]
        try:
            api_key, key = api_key_create(
                tenant=tenant,
                name=name,
                scopes=options["scopes"].split(","),
                actor=Actor.system("manage.py create_api_key"),
            )
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(
            f"API key {api_key.prefix} for tenant {tenant.name}, scopes "
            f"{','.join(api_key.scopes)}. Store it now; it is not shown again:"
        )
        self.stdout.write(key)
