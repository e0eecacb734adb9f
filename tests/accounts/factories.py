"""Staff users with roles and TOTP devices, for any test area (admin screens, services).

from tests.accounts.factories import create_staff_user, totp_code, verified_login
user, device = create_staff_user("olga", roles=["operators"])
verified_login(client, user, device)     # a test client past password and OTP
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.accounts.models import StaffProfile
from portal.accounts.users import role_grant
from portal.audit.services import Actor

PASSWORD = "correct horse battery staple 42"


def create_staff_user(
    username: str,
    *,
    roles: Iterable[str] = (),
    with_totp: bool = True,
    password: str = PASSWORD,
    superuser: bool = False,
    tenants: Iterable[Any] = (),
) -> tuple[Any, TOTPDevice | None]:
    """An active staff user in ``roles`` with (by default) a confirmed TOTP device."""
    user = get_user_model().objects.create_user(
        username=username,
        password=password,
        is_staff=True,
        is_superuser=superuser,
        email=f"{username}@example.com",
    )
    for role in roles:  # the one way a role changes, audited like any grant
        role_grant(user=user, role=role, actor=Actor.system("tests"))
    tenants = list(tenants)
    # No tenants named: the explicit all-tenants grant (a profile fails closed otherwise).
    profile, _ = StaffProfile.objects.get_or_create(
        user=user, defaults={"all_tenants": not tenants}
    )
    if tenants:
        profile.tenants.set(tenants)
    device = None
    if with_totp:
        device = TOTPDevice.objects.create(user=user, name="authenticator app", confirmed=True)
    return user, device


def totp_code(device: TOTPDevice, *, at: float | None = None, steps_ahead: int = 0) -> str:
    """The code ``device`` accepts at time ``at`` (now by default), zero-padded."""
    device.refresh_from_db()
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = (time.time() if at is None else at) + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


def verified_login(client: Client, user: Any, device: Any) -> None:
    """Log ``client`` in as ``user`` verified by ``device``, skipping the login form."""
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


def verified_client(user_and_device: tuple[Any, Any], **client_kwargs: Any) -> Client:
    """A test client logged in as ``(user, device)`` with the second factor verified."""
    client = Client(**client_kwargs)
    verified_login(client, *user_and_device)
    return client


def staff_client(username: str, roles: Iterable[str] = (), **user_kwargs: Any) -> Client:
    """A new staff user in ``roles`` (see ``create_staff_user``), logged in and verified."""
    return verified_client(create_staff_user(username, roles=roles, **user_kwargs))
