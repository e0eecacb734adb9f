"""2FA screens outside the admin's own pages: first-login enrolment and backup codes."""

from __future__ import annotations

import functools
import time
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth import login as auth_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django_otp.middleware import is_verified
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.audit.services import Actor, audit_record, ip_from_request

from .invitations import INVITATION_SESSION_KEY, invitation_by_token
from .stepup import StepUpFailed, StepUpForm, backup_codes_regenerate
from .twofactor import (
    TwoFactorError,
    backup_codes_remaining,
    provisioning_qr_svg,
    provisioning_secret,
    totp_enrolment_confirm,
    totp_enrolment_start,
)

ENROLMENT_SESSION_KEY = "portal_enrolment"
ENROLMENT_TTL_S = 10 * 60


class EnrolmentConfirmForm(forms.Form):
    otp_token = forms.CharField(
        label="Code from your app",
        max_length=16,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "autofocus": True,
                "size": 8,
            }
        ),
    )


def begin_enrolment(
    request: HttpRequest, user: Any, *, invitation_id: int | None, next_url: str = ""
) -> HttpResponse:
    """After a correct password for a user without a TOTP device: start their enrolment.

    The user is not logged in until they confirm a code; the session only remembers,
    for ``ENROLMENT_TTL_S`` seconds, whose password was checked and which new device
    they are confirming.
    """
    device = totp_enrolment_start(user=user)
    request.session.cycle_key()
    request.session[ENROLMENT_SESSION_KEY] = {
        "user_id": user.pk,
        "device_id": device.pk,
        "invitation_id": invitation_id,
        "started_at": time.time(),
        "backend": getattr(user, "backend", "django.contrib.auth.backends.ModelBackend"),
        "next": next_url,
    }
    audit_record(
        actor=Actor.user(user),
        action="otp.enrolment_started",
        object_type="user",
        object_id=user.pk,
        ip_address=ip_from_request(request),
    )
    return redirect("accounts:enrol")


def _pending_enrolment(request: HttpRequest) -> tuple[dict[str, Any], Any, TOTPDevice] | None:
    state = request.session.get(ENROLMENT_SESSION_KEY)
    if not state or time.time() - state.get("started_at", 0) > ENROLMENT_TTL_S:
        request.session.pop(ENROLMENT_SESSION_KEY, None)
        return None
    user = (
        get_user_model().objects.filter(pk=state["user_id"], is_active=True, is_staff=True).first()
    )
    device = TOTPDevice.objects.filter(
        pk=state["device_id"], user_id=state["user_id"], confirmed=False
    ).first()
    if user is None or device is None:
        request.session.pop(ENROLMENT_SESSION_KEY, None)
        return None
    return state, user, device


def _codes_response(
    request: HttpRequest, codes: list[str], *, next_url: str, title: str
) -> HttpResponse:
    response = render(
        request,
        "accounts/backup_codes.html",
        {
            **admin.site.each_context(request),
            "title": title,
            "codes": codes,
            "codes_text": "".join(f"{code}\n" for code in codes),
            "next_url": next_url or reverse("admin:index"),
        },
    )
    response["Cache-Control"] = "no-store"
    return response


@never_cache
@sensitive_post_parameters("otp_token")
def enrol(request: HttpRequest) -> HttpResponse:
    pending = _pending_enrolment(request)
    if pending is None:
        return render(
            request,
            "accounts/enrol_expired.html",
            {**admin.site.each_context(request), "title": "Enrolment expired"},
            status=400,
        )
    state, user, device = pending
    form = EnrolmentConfirmForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            device, codes = totp_enrolment_confirm(
                user=user,
                device_id=device.pk,
                token=form.cleaned_data["otp_token"],
                invitation_id=state.get("invitation_id"),
                ip_address=ip_from_request(request),
            )
        except TwoFactorError as exc:
            form.add_error("otp_token", exc.detail)
        else:
            request.session.pop(ENROLMENT_SESSION_KEY, None)
            request.session.pop(INVITATION_SESSION_KEY, None)
            user.otp_device = device  # django_otp.login runs on user_logged_in
            user.is_verified = functools.partial(is_verified, user)  # as OTPMiddleware does
            user.portal_login_method = "enrolment"
            auth_login(request, user, backend=state["backend"])
            return _codes_response(
                request, codes, next_url=state.get("next", ""), title="Your backup codes"
            )
    return render(
        request,
        "accounts/enrol.html",
        {
            **admin.site.each_context(request),
            "title": "Set up two-factor authentication",
            "form": form,
            "enrol_username": user.get_username(),
            "qr_svg": provisioning_qr_svg(device),
            "secret": provisioning_secret(device),
            "issuer": getattr(settings, "OTP_TOTP_ISSUER", ""),
        },
    )


@never_cache
@sensitive_post_parameters("otp_token")
def backup_codes(request: HttpRequest) -> HttpResponse:
    """Show how many backup codes are left; issue a new set after a fresh TOTP code."""
    if not admin.site.has_permission(request):
        login_url = reverse("admin:login")
        return HttpResponseRedirect(f"{login_url}?next={request.path}")
    form = StepUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            codes = backup_codes_regenerate(
                user=request.user,
                totp_token=form.cleaned_data["otp_token"],
                ip_address=ip_from_request(request),
            )
        except StepUpFailed as exc:
            form.add_error("otp_token", exc.detail)
        else:
            return _codes_response(request, codes, next_url="", title="Your new backup codes")
    return render(
        request,
        "accounts/backup_codes_manage.html",
        {
            **admin.site.each_context(request),
            "title": "Backup codes",
            "form": form,
            "remaining": backup_codes_remaining(request.user),
        },
    )


@never_cache
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """An invitation link: remembered in this browser's session, then on to the login.

    Nothing is consumed here (a link preview must not use it up); the enrolment's
    confirmation does that. An unknown, used, revoked or expired link says so.
    """
    found = invitation_by_token(token)
    if found is None:
        return render(
            request,
            "accounts/invitation_invalid.html",
            {**admin.site.each_context(request), "title": "Invitation not valid"},
            status=404,
        )
    request.session.cycle_key()
    request.session[INVITATION_SESSION_KEY] = found.pk
    login_url = reverse("admin:login")
    return HttpResponseRedirect(f"{login_url}?invited={found.user.get_username()}")
