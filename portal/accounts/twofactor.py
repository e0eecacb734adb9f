"""TOTP enrolment, backup codes and 2FA reset: the state changes behind the 2FA screens.

Token checks run in their own short transaction *before* any other write, so a wrong
code's throttling increment is committed even though the operation is refused.
"""

from __future__ import annotations

import base64
from typing import Any

import segno
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.audit.services import Actor, audit_record
from portal.errors import PermissionDenied

from .models import BackupCodeDevice, StaffInvitation
from .roles import PLATFORM_ADMINS, require_role

TOTP_DEVICE_NAME = "authenticator app"
BACKUP_DEVICE_NAME = "backup codes"


class TwoFactorError(PermissionDenied):
    code = "two_factor_failed"
    title = "Two-factor verification failed"


def confirmed_totp_device(user: Any, *, for_verify: bool = False) -> TOTPDevice | None:
    """The user's confirmed TOTP device (``for_verify`` locks it for a token check)."""
    devices = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk")
    if for_verify:
        devices = devices.select_for_update()
    return devices.first()


def has_confirmed_totp(user: Any) -> bool:
    confirmed: bool = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    return confirmed


def backup_codes_remaining(user: Any) -> int:
    device = BackupCodeDevice.objects.filter(user=user).first()
    return device.codes.count() if device else 0


def throttle_message(device: Any) -> str | None:
    """A human message when ``device`` refuses verification for now, else None."""
    allowed, extra = device.verify_is_allowed()
    if allowed:
        return None
    until = (extra or {}).get("locked_until")
    if until is not None:
        return (
            f"Too many wrong codes: verification is paused until {until:%H:%M:%S} UTC. "
            "Wait, then enter the current code."
        )
    return "Verification is paused for this device after wrong codes; try again shortly."


def verify_device_token(device_model: Any, device_pk: int, token: str) -> tuple[bool, str | None]:
    """Check ``token`` on a device in its own transaction: (verified, refusal message)."""
    with transaction.atomic():
        device = device_model.objects.select_for_update().filter(pk=device_pk).first()
        if device is None:
            return False, "This device no longer exists; start again."
        refusal = throttle_message(device)
        if refusal:
            return False, refusal
        if device.verify_token(token):
            return True, None
    return False, None


def totp_enrolment_start(*, user: Any) -> TOTPDevice:
    """A new unconfirmed TOTP device with a fresh secret; earlier unconfirmed ones go."""
    if not (user.is_active and user.is_staff):
        raise TwoFactorError("Only active staff users enrol an authenticator.")
    if has_confirmed_totp(user):
        raise TwoFactorError("This user already has a confirmed authenticator.")
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return TOTPDevice.objects.create(user=user, name=TOTP_DEVICE_NAME, confirmed=False)


def totp_enrolment_confirm(
    *,
    user: Any,
    device_id: int,
    token: str,
    invitation_id: int | None,
    ip_address: str | None = None,
) -> tuple[TOTPDevice, list[str]]:
    """Confirm the enrolment with one valid code; returns the device and new backup codes.

    The invitation that let the user enrol is consumed in the same transaction.
    """
    token = normalize_token(token)
    if not token:
        raise TwoFactorError("Enter the 6-digit code your authenticator app shows.")
    verified, refusal = verify_device_token(TOTPDevice, device_id, token)
    if not verified:
        audit_record(
            actor=Actor.user(user),
            action="otp.enrolment_failed",
            object_type="user",
            object_id=user.pk,
            data={"reason": "throttled" if refusal else "wrong_code"},
            ip_address=ip_address,
        )
        raise TwoFactorError(
            refusal
            or "That code is not valid. Check the clock of your phone and enter the current code."
        )
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device_id, user=user)
        if device.confirmed or has_confirmed_totp(user):
            raise TwoFactorError("This user already has a confirmed authenticator.")
        if invitation_id is None:
            raise TwoFactorError("Enrolment needs an invitation; ask a platform admin.")
        from .invitations import invitation_consume

        invitation_consume(invitation_id=invitation_id, user=user)
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        audit_record(
            actor=Actor.user(user),
            action="otp.device_confirmed",
            object_type="user",
            object_id=user.pk,
            data={"device": device.persistent_id, "kind": "totp"},
            ip_address=ip_address,
        )
        codes = backup_codes_issue(user=user, ip_address=ip_address, reason="enrolment")
    return device, codes


def backup_codes_issue(*, user: Any, ip_address: str | None, reason: str) -> list[str]:
    """A fresh set of backup codes for ``user`` (the old ones stop working), audited.

    Call inside the transaction of the operation that issues them (enrolment or a
    step-up-verified regeneration)."""
    backup, _ = BackupCodeDevice.objects.get_or_create(
        user=user, defaults={"name": BACKUP_DEVICE_NAME, "confirmed": True}
    )
    codes: list[str] = backup.issue_codes()
    backup.throttle_reset()
    audit_record(
        actor=Actor.user(user),
        action="otp.backup_codes_issued",
        object_type="user",
        object_id=user.pk,
        data={"count": len(codes), "reason": reason},
        ip_address=ip_address,
    )
    return codes


def two_factor_reset(*, actor: Any, user: Any, ip_address: str | None = None) -> None:
    """Remove a user's TOTP and backup devices and any open invitation: they enrol again
    only with a new invitation (``manage.py invite_staff``)."""
    require_role(actor, PLATFORM_ADMINS)
    with transaction.atomic():
        removed_totp, _ = TOTPDevice.objects.filter(user=user).delete()
        BackupCodeDevice.objects.filter(user=user).delete()
        StaffInvitation.objects.filter(
            user=user, used_at__isnull=True, revoked_at__isnull=True
        ).update(revoked_at=timezone.now())
        audit_record(
            actor=Actor.user(actor),
            action="otp.device_reset",
            object_type="user",
            object_id=user.pk,
            data={"username": user.get_username(), "devices_removed": removed_totp},
            ip_address=ip_address,
        )


def normalize_token(token: Any) -> str:
    """Codes as typed: spaces and hyphens dropped, lower case (backup codes are hex)."""
    return "".join(str(token or "").split()).replace("-", "").lower()


def provisioning_qr_svg(device: TOTPDevice) -> str:
    """The otpauth:// URI as an inline SVG QR code, rendered locally (no third party)."""
    return segno.make(device.config_url, error="m").svg_inline(scale=5, border=2)


def totp_secret_base32(device: TOTPDevice) -> str:
    """The device's secret as authenticator apps take it (base32, no padding)."""
    return base64.b32encode(device.bin_key).decode().rstrip("=")


def provisioning_secret(device: TOTPDevice) -> str:
    """The base32 secret in groups of four, for typing into an app by hand."""
    secret = totp_secret_base32(device)
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
