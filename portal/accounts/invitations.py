"""Staff enrolment by invitation: ``invitation_issue`` makes a one-time token that
expires after ``STAFF_INVITATION_TTL_S``; the enrolment confirm consumes it. A 2FA reset
revokes open invitations, so a reset user needs a new one. (Roles: ``users.role_grant``.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from portal.audit.services import Actor, audit_record
from portal.errors import InvalidRequest

from .models import StaffInvitation
from .twofactor import TwoFactorError, has_confirmed_totp

INVITATION_SESSION_KEY = "portal_invitation"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.strip().encode()).hexdigest()


def staff_user_get(username: str) -> Any:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise InvalidRequest(f"No user {username!r}.")
    return user


def invitation_issue(*, user: Any, actor: Actor, ttl_s: float | None = None) -> tuple[Any, str]:
    """A new invitation for ``user`` (earlier open ones revoked); the token is returned once."""
    if not (user.is_active and user.is_staff):
        raise InvalidRequest(f"{user.get_username()} is not an active staff user.")
    if has_confirmed_totp(user):
        raise InvalidRequest(
            f"{user.get_username()} already has an authenticator; reset their 2FA first."
        )
    ttl = settings.STAFF_INVITATION_TTL_S if ttl_s is None else ttl_s
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        invitation_revoke_open(user=user, now=now)
        invitation = StaffInvitation.objects.create(
            user=user,
            token_sha256=_token_hash(token),
            issued_by=actor.label,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=ttl),
        )
        audit_record(
            actor=actor,
            action="staff.invited",
            object_type="user",
            object_id=user.pk,
            data={"username": user.get_username(), "expires_at": invitation.expires_at.isoformat()},
        )
    return invitation, token


def invitation_revoke_open(*, user: Any, now: dt.datetime | None = None) -> int:
    return StaffInvitation.objects.filter(
        user=user, used_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=now or timezone.now())


def _open(queryset: QuerySet[StaffInvitation], now: dt.datetime) -> QuerySet[StaffInvitation]:
    return queryset.filter(used_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now)


def invitation_by_token(token: str) -> StaffInvitation | None:
    """The open invitation this token names, or None (unknown, used, revoked, expired)."""
    if not token or len(token) > 200:
        return None
    found = _open(StaffInvitation.objects.filter(token_sha256=_token_hash(token)), timezone.now())
    return found.select_related("user").first()


def invitation_open_for(*, invitation_id: Any, user: Any) -> StaffInvitation | None:
    """The session's invitation when it is still open and made for ``user``."""
    if not isinstance(invitation_id, int):
        return None
    return _open(
        StaffInvitation.objects.filter(pk=invitation_id, user=user), timezone.now()
    ).first()


def invitation_consume(*, invitation_id: int, user: Any) -> None:
    """Mark the invitation used, in the enrolment's transaction; refuse if no longer open."""
    used = _open(
        StaffInvitation.objects.filter(pk=invitation_id, user=user), timezone.now()
    ).update(used_at=timezone.now())
    if not used:
        raise TwoFactorError("This invitation expired or was already used; ask for a new one.")
