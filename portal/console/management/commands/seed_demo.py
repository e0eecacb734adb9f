"""`manage.py seed_demo`: a demo tenant, API key and staff users for `make run`.

Idempotent: a second run changes nothing and prints the same credentials. Plain
secrets (the API key, the passwords) are never stored in the database, so they are
kept in ``var/demo_credentials.json`` (mode 0600); a key or password is only replaced
when the one recorded there no longer works.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from intents.errors import RegistryError
from intents.registry import registry_sync
from portal.accounts.models import ALL_SCOPES, ApiKey, Tenant
from portal.accounts.roles import APPROVERS, AUDITORS, OPERATORS, PLATFORM_ADMINS
from portal.accounts.services import (
    api_key_create,
    api_key_revoke,
    tenant_create,
    tenant_limits_update,
)
from portal.accounts.twofactor import (
    TOTP_DEVICE_NAME,
    confirmed_totp_device,
    totp_secret_base32,
)
from portal.accounts.users import (
    role_grant,
    user_create,
    user_grant_all_tenants,
    user_set_flags,
    user_set_password,
)
from portal.audit.services import Actor, audit_record
from portal.errors import DomainError

ACTOR_LABEL = "manage.py seed_demo"
DEMO_TENANT = "demo"
DEMO_API_KEY_NAME = "demo key (seed_demo)"
# username -> (roles, superuser)
DEMO_USERS: dict[str, tuple[tuple[str, ...], bool]] = {
    "operator": ((OPERATORS,), False),
    "approver": ((APPROVERS,), False),
    "auditor": ((AUDITORS,), False),
    "admin": ((PLATFORM_ADMINS,), True),
}


def default_credentials_path() -> Path:
    return Path(settings.DEMO_CREDENTIALS_FILE)


def current_totp_code(device: TOTPDevice) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return f"{totp.token():0{device.digits}d}"


@dataclasses.dataclass
class SeedResult:
    api_key: str
    users: list[dict[str, Any]]
    changes: list[str]


def _read_credentials(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_credentials(path: Path, data: dict[str, Any]) -> None:
    """Write atomically; the file is created 0600 and never exists with wider rights."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2) + "\n"
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".demo_credentials.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)


def _usable_key(plain: Any, tenant: Tenant) -> ApiKey | None:
    if not isinstance(plain, str) or "." not in plain:
        return None
    try:
        # The library annotates its manager with AbstractAPIKey; it queries self.model, ApiKey.
        api_key = cast(ApiKey, ApiKey.objects.get_from_key(plain))
    except ApiKey.DoesNotExist:
        return None
    if api_key.tenant_id != tenant.pk or api_key.has_expired:
        return None
    if set(api_key.scopes) != set(ALL_SCOPES):
        return None
    return api_key


def _seed_api_key(tenant: Tenant, stored: Any, actor: Actor, changes: list[str]) -> str:
    current = _usable_key(stored, tenant)
    if current is not None:
        return cast(str, stored)  # a usable key is a str: _usable_key checked
    _, plain = api_key_create(tenant=tenant, name=DEMO_API_KEY_NAME, scopes=ALL_SCOPES, actor=actor)
    changes.append("api key created")
    # Earlier demo keys can no longer be shown to anyone: revoke them.
    for old in ApiKey.objects.filter(tenant=tenant, name=DEMO_API_KEY_NAME, revoked=False).exclude(
        prefix=plain.partition(".")[0]
    ):
        api_key_revoke(api_key=old, actor=actor)
        changes.append(f"old api key {old.prefix} revoked")
    return plain


def _seed_user(
    username: str,
    roles: tuple[str, ...],
    superuser: bool,
    stored_password: Any,
    actor: Actor,
    changes: list[str],
) -> dict[str, Any]:
    user = get_user_model().objects.filter(username=username).first()
    password = stored_password if isinstance(stored_password, str) else ""
    if user is None:
        password = secrets.token_urlsafe(18)
        user = user_create(
            username=username,
            password=password,
            email=f"{username}@demo.invalid",
            is_superuser=superuser,
            actor=actor,
        )
        changes.append(f"user {username} created")
    else:
        wrong = user_set_flags(
            user=user, actor=actor, is_active=True, is_staff=True, is_superuser=superuser
        )
        if wrong:
            changes.append(f"user {username} flags {', '.join(wrong)} set")
        if not (password and user.check_password(password)):
            password = secrets.token_urlsafe(18)
            user_set_password(
                user=user,
                password=password,
                actor=actor,
                reason="demo credentials file had no match",
            )
            changes.append(f"user {username} password reset")
    granted = [role for role in roles if role_grant(user=user, role=role, actor=actor)]
    if granted:
        changes.append(f"user {username} roles {', '.join(granted)} granted")
    # Demo staff see every tenant: an explicit grant, since a profile fails closed.
    if user_grant_all_tenants(user=user, actor=actor, reason="seed_demo"):
        changes.append(f"user {username} sees all tenants")
    device = confirmed_totp_device(user)
    if device is None:
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        device = TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=True)
        audit_record(
            actor=actor,
            action="otp.device_confirmed",
            object_type="user",
            object_id=user.pk,
            data={"device": device.persistent_id, "kind": "totp", "reason": "seed_demo"},
        )
        changes.append(f"user {username} TOTP device created")
    return {
        "username": username,
        "password": password,
        "roles": list(roles),
        "totp_secret_base32": totp_secret_base32(device),
    }


def seed(*, targets_dir: Path, stored: dict[str, Any]) -> SeedResult:
    """Bring the demo data to its wanted state; ``stored`` is the previous credentials file."""
    actor = Actor.system(ACTOR_LABEL)
    changes: list[str] = []
    report = registry_sync(directory=targets_dir, actor_label=ACTOR_LABEL)
    for label in ("created", "revised", "retired"):
        keys = getattr(report, label)
        if keys:
            changes.append(f"targets {label}: {', '.join(keys)}")
    stored_passwords = {
        entry.get("username"): entry.get("password")
        for entry in stored.get("users") or []
        if isinstance(entry, dict)
    }
    with transaction.atomic():
        tenant, created = tenant_create(name=DEMO_TENANT, actor=actor)
        if created:
            changes.append(f"tenant {DEMO_TENANT} created")
        if not tenant.allow_all_targets:
            tenant_limits_update(tenant=tenant, actor=actor, allow_all_targets=True)
            changes.append(f"tenant {DEMO_TENANT} allowed all targets")
        api_key = _seed_api_key(tenant, stored.get("api_key"), actor, changes)
        users = [
            _seed_user(username, roles, superuser, stored_passwords.get(username), actor, changes)
            for username, (roles, superuser) in DEMO_USERS.items()
        ]
    return SeedResult(api_key=api_key, users=users, changes=changes)


class Command(BaseCommand):
    help = (
        "Seed demo data for `make run`: targets, tenant 'demo' with an API key, and staff "
        "users operator / approver / auditor / admin with confirmed TOTP devices. Writes "
        "var/demo_credentials.json (mode 0600). Idempotent. Refuses to run with DEBUG off "
        "unless --force."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--totp-code",
            metavar="USERNAME",
            help="Print USERNAME's current TOTP code and exit (only with DEBUG on).",
        )
        parser.add_argument("--force", action="store_true", help="Seed even though DEBUG is off.")
        parser.add_argument(
            "--output",
            type=Path,
            default=None,
            help="Credentials file (default: var/demo_credentials.json).",
        )
        parser.add_argument(
            "--targets-dir", type=Path, default=None, help="Registry folder (default: TARGETS_DIR)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["totp_code"]:
            self.stdout.write(self._totp_code(options["totp_code"]))
            return
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "seed_demo creates users whose passwords are written to a file; it runs only "
                "with DEBUG on. Use --force to seed anyway."
            )
        path = options["output"] or default_credentials_path()
        targets_dir = options["targets_dir"] or Path(settings.TARGETS_DIR)
        stored = _read_credentials(path)
        try:
            result = seed(targets_dir=targets_dir, stored=stored)
        except RegistryError as exc:
            raise CommandError(f"targets not loaded: {exc.detail}") from None
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        data = {"tenant": DEMO_TENANT, "api_key": result.api_key, "users": result.users}
        if data != stored or not path.exists() or (path.stat().st_mode & 0o777) != 0o600:
            _write_credentials(path, data)
        self.stdout.write(
            "changed: " + "; ".join(result.changes) if result.changes else "nothing changed"
        )
        self.stdout.write(f"credentials file: {path}")
        self.stdout.write(f"tenant {DEMO_TENANT}, API key: {result.api_key}")
        for user in result.users:
            self.stdout.write(
                f"  {user['username']:<10} password {user['password']}  "
                f"roles {','.join(user['roles'])}  TOTP secret {user['totp_secret_base32']}"
            )

    def _totp_code(self, username: str) -> str:
        if not settings.DEBUG:
            raise CommandError("--totp-code prints a live second factor; it needs DEBUG on.")
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        device = confirmed_totp_device(user)
        if device is None:
            raise CommandError(f"{username} has no confirmed TOTP device.")
        return current_totp_code(device)
