"""Step-up verification: a fresh TOTP code for a sensitive action (replay approval).

``verify_step_up`` checks the code against the user's confirmed TOTP device. django-otp's
TOTPDevice remembers the time step of the last accepted code (``last_t``) and accepts
only later ones, so the code used to log in, or for an earlier step-up, never passes
again. Wrong codes are throttled by django-otp (exponential back-off per device).

Call it *before* opening the transaction of the action it guards: a wrong code's
throttling increment is written in its own transaction, and an outer transaction that
rolls back on the refusal would also undo that increment.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.audit.services import Actor, audit_record
from portal.errors import PermissionDenied

from .twofactor import (
    backup_codes_issue,
    confirmed_totp_device,
    normalize_token,
    verify_device_token,
)


class StepUpFailed(PermissionDenied):
    code = "step_up_failed"
    title = "Fresh two-factor code required"


def verify_step_up(*, user: Any, token: str, ip_address: str | None = None) -> TOTPDevice:
    """Return the user's TOTP device when ``token`` is a fresh valid code, else raise.

    Raises ``StepUpFailed`` (a ``portal.errors.PermissionDenied``) with a message fit for
    the user: no authenticator, throttled after wrong codes, or wrong/already-used code.
    """
    if not (user and user.is_authenticated and user.is_active):
        raise StepUpFailed("Only an active user can confirm with a code.")
    token = normalize_token(token)
    if not token:
        raise StepUpFailed("Enter the current 6-digit code from your authenticator app.")
    device = confirmed_totp_device(user)
    if device is None:
        raise StepUpFailed(
            f"{user.get_username()} has no confirmed authenticator; log in to the admin "
            "once to enrol one."
        )
    verified, refusal = verify_device_token(TOTPDevice, device.pk, token)
    if verified:
        device.refresh_from_db()
        return device
    audit_record(
        actor=Actor.user(user),
        action="otp.step_up_failed",
        object_type="user",
        object_id=user.pk,
        data={"reason": "throttled" if refusal else "wrong_or_reused_code"},
        ip_address=ip_address,
    )
    raise StepUpFailed(
        refusal
        or "The code is wrong or was already used (each code works once, including the "
        "one you logged in with). Wait for the next code and enter it."
    )


class StepUpForm(forms.Form):
    """One ``otp_token`` field for approval pages. It checks only the code's shape: the
    service the page calls verifies the code (``verify_step_up``), since a code can be
    verified only once."""

    otp_token = forms.CharField(
        label="Authenticator code",
        max_length=16,
        strip=True,
        help_text="The current 6-digit code from your authenticator app (not a backup code).",
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "autofocus": True,
                "size": 8,
            }
        ),
    )

    def clean_otp_token(self) -> str:
        token = normalize_token(self.cleaned_data["otp_token"])
        if not token.isdigit() or len(token) not in (6, 8):
            raise forms.ValidationError(
                "Enter the 6-digit code from your authenticator app.", code="format"
            )
        return token


def backup_codes_regenerate(
    *, user: Any, totp_token: str, ip_address: str | None = None
) -> list[str]:
    """Replace the user's backup codes after a fresh TOTP code (the old ones stop working).

    It lives here, not in ``twofactor``, so the step-up check is imported one way only.
    """
    verify_step_up(user=user, token=totp_token, ip_address=ip_address)
    with transaction.atomic():
        return backup_codes_issue(user=user, ip_address=ip_address, reason="regenerated")
