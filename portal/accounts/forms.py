"""The admin login form: password and one code, with enrolment for users without a device."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django_otp.admin import OTPAdminAuthenticationForm
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.audit.services import Actor, audit_record, ip_from_request

from .invitations import INVITATION_SESSION_KEY, invitation_open_for
from .models import BackupCodeDevice
from .twofactor import has_confirmed_totp, normalize_token


class EnrolmentRequired(forms.ValidationError):
    """Raised by the login form when the password was right but no TOTP device exists yet."""


class PortalLoginForm(OTPAdminAuthenticationForm):  # type: ignore[misc]  # django-otp: untyped
    """OTPAdminSite's form (username, password, OTP token) with two additions.

    - The device is chosen from the code's shape when the form does not name one: a
      6 or 8 digit code goes to the user's TOTP device, anything else to their backup
      codes. django-otp deliberately refuses to try every device in turn (that would
      count a failure against each); this picks exactly one, so throttling stays exact.
    - A staff user whose password is right but who has no confirmed TOTP device is
      sent to the enrolment flow (``enrolment_user`` is set) when this browser opened an
      open invitation for them; without one the login is refused.
    """

    otp_token = forms.CharField(
        required=False,
        label="Authentication code",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "spellcheck": "false", "size": 12}
        ),
        help_text="From your authenticator app, or one of your backup codes.",
    )

    otp_error_messages = {
        **OTPAdminAuthenticationForm.otp_error_messages,
        "token_required": "Enter the code from your authenticator app (or a backup code).",
        "invalid_token": "That code is not valid, or it was already used. Enter the current "
        "code from your authenticator app, or an unused backup code.",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.enrolment_user: Any = None
        self.enrolment_invitation_id: int | None = None

    def clean(self) -> dict[str, Any]:
        # AdminAuthenticationForm.clean authenticates through django.contrib.auth (so
        # django-axes counts a wrong password) and refuses inactive and non-staff users.
        self.cleaned_data = AdminAuthenticationForm.clean(self)
        user = self.get_user()
        if user is None:
            return self.cleaned_data
        if not has_confirmed_totp(user):
            # A password alone never enrols: only with an open invitation for this user
            # opened in this browser (accounts:invitation).
            session = getattr(self.request, "session", None)
            invitation = invitation_open_for(
                invitation_id=session.get(INVITATION_SESSION_KEY) if session else None,
                user=user,
            )
            if invitation is None:
                audit_record(
                    actor=Actor.user(user),
                    action="auth.enrolment_refused",
                    object_type="user",
                    object_id=user.pk,
                    data={"username": user.get_username(), "reason": "no_invitation"},
                    ip_address=ip_from_request(self.request),
                )
                raise forms.ValidationError(
                    "This account has no authenticator yet. Open the invitation link a "
                    "platform admin gave you, then log in again.",
                    code="invitation_required",
                )
            self.enrolment_user = user
            self.enrolment_invitation_id = invitation.pk
            raise EnrolmentRequired(
                "Set up two-factor authentication to continue.", code="enrolment_required"
            )
        token = normalize_token(self.cleaned_data.get("otp_token"))
        self.cleaned_data["otp_token"] = token
        if token and not self.cleaned_data.get("otp_device"):
            device = self._device_for_token(user, token)
            if device is not None:
                self.cleaned_data["otp_device"] = device.persistent_id
        try:
            self.clean_otp(user)
        except forms.ValidationError as exc:
            audit_record(
                actor=Actor.user(user),
                action="auth.otp_failed",
                object_type="user",
                object_id=user.pk,
                data={"username": user.get_username(), "reason": exc.code or "throttled"},
                ip_address=ip_from_request(self.request),
            )
            raise
        return self.cleaned_data

    @staticmethod
    def _device_for_token(user: Any, token: str) -> Any:
        if token.isdigit() and len(token) in (6, 8):
            return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()
        return BackupCodeDevice.objects.filter(user=user, confirmed=True).first()
