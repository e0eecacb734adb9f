from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.accounts.models import ApiKey
from portal.accounts.services import api_key_revoke
from portal.audit.services import Actor


class Command(BaseCommand):
    help = (
        "Revoke an API key for good, by the prefix create_api_key printed (the part of the "
        "key before the dot). Clients using it are refused from their next request."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix", help="The key's prefix, e.g. AbCd1234.")

    def handle(self, *args: Any, **options: Any) -> None:
        # A whole key pasted by mistake still names its key; only the prefix is used.
        prefix = options["prefix"].strip().partition(".")[0]
        api_key = ApiKey.objects.select_related("tenant").filter(prefix=prefix).first()
        if not prefix or api_key is None:
            raise CommandError(f"No API key has the prefix {prefix!r}.")
        where = f"API key {api_key.prefix} ({api_key.name}) of tenant {api_key.tenant.name}"
        if api_key.revoked:
            self.stdout.write(f"{where} was already revoked; nothing changed.")
            return
        api_key_revoke(api_key=api_key, actor=Actor.system("manage.py revoke_api_key"))
        self.stdout.write(f"{where} revoked.")
