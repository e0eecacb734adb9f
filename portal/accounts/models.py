"""Tenants, their API keys, staff scoping and hashed 2FA backup codes."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django_otp.models import Device, ThrottlingMixin
from rest_framework_api_key.models import AbstractAPIKey


class Tenant(models.Model):
    """A client organisation: its limits and the targets it may use."""

    name = models.CharField(max_length=100, unique=True)
    is_active = models.BooleanField(default=True)
    rate_limit_per_minute = models.PositiveIntegerField(
        default=settings.DEFAULT_TENANT_RATE_PER_MINUTE,
        help_text="POST /intents requests allowed per minute.",
    )
    max_open_intents = models.PositiveIntegerField(
        default=settings.DEFAULT_TENANT_MAX_OPEN_INTENTS,
        help_text="Intents that may be pending or in flight at once.",
    )
    allow_all_targets = models.BooleanField(default=True)
    allowed_targets = models.JSONField(
        default=list, blank=True, help_text="Target keys, used when not all targets are allowed."
    )
    retry_overrides = models.JSONField(
        default=dict,
        blank=True,
        help_text='Bounded retry-policy overrides, e.g. {"max_attempts": 3}.',
    )
    # Channels with at least one suppressed recipient: intake looks the list up only
    # for these, so a tenant without suppressions pays no query for it.
    suppressed_channels = models.JSONField(default=list, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def may_use_target(self, target_key: str) -> bool:
        return self.allow_all_targets or target_key in self.allowed_targets


class ApiKeyScope(models.TextChoices):
    INTENTS_WRITE = "intents:write"
    INTENTS_READ = "intents:read"
    INTENTS_CANCEL = "intents:cancel"
    TARGETS_READ = "targets:read"
    WEBHOOKS_WRITE = "webhooks:write"
    WEBHOOKS_READ = "webhooks:read"


ALL_SCOPES = [scope.value for scope in ApiKeyScope]


class ApiKey(AbstractAPIKey):
    """A tenant's key: prefix lookup plus a SHA-512 digest (djangorestframework-api-key)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="api_keys")
    scopes = models.JSONField(default=list)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta(AbstractAPIKey.Meta):
        verbose_name = "API key"
        verbose_name_plural = "API keys"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class StaffProfile(models.Model):
    """Which tenants a staff user may see: those listed, or all with ``all_tenants``.

    Fails closed: a staff user with no profile, or none listed and no flag, sees no
    tenant's data (platform admins and superusers see every tenant by their role).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_profile"
    )
    tenants = models.ManyToManyField(Tenant, blank=True, related_name="+")
    all_tenants = models.BooleanField(
        default=False, help_text="Sees every tenant (an explicit, audited grant)."
    )
    login_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"profile of {self.user}"


def _hash_backup_code(code: str) -> str:
    # Backup codes are 80 random bits, so a keyed fast hash is enough; it is keyed so
    # a copy of the table alone cannot be checked against guesses.
    secret = settings.SECRET_KEY
    if not secret:  # Django refuses an empty SECRET_KEY; kept under python -O all the same
        raise ImproperlyConfigured("SECRET_KEY is empty: backup codes cannot be hashed.")
    key = secret.encode()
    return hmac.new(key, code.strip().lower().encode(), hashlib.sha256).hexdigest()


class BackupCodeDevice(ThrottlingMixin, Device):  # type: ignore[misc]  # django-otp: no type hints
    """django-otp device whose single-use codes are stored hashed, never in plain text."""

    CODE_COUNT = 10
    CODE_BYTES = 10  # 80 random bits, 20 hex characters

    class Meta(Device.Meta):  # type: ignore[misc]  # (the same)
        verbose_name = "backup code device"

    def issue_codes(self) -> list[str]:
        """Replace every code with fresh ones; the plain codes are returned once."""
        codes = [secrets.token_hex(self.CODE_BYTES) for _ in range(self.CODE_COUNT)]
        self.codes.all().delete()
        BackupCode.objects.bulk_create(
            BackupCode(device=self, code_hash=_hash_backup_code(code)) for code in codes
        )
        return codes

    def verify_token(self, token: str) -> bool:
        verify_allowed, _ = self.verify_is_allowed()
        if not verify_allowed:
            return False
        deleted, _ = self.codes.filter(code_hash=_hash_backup_code(str(token))).delete()
        if deleted:
            self.throttle_reset()
            return True
        self.throttle_increment()
        return False

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_STATIC_THROTTLE_FACTOR", 1)


class BackupCode(models.Model):
    device = models.ForeignKey(BackupCodeDevice, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "code_hash"], name="uniq_backup_code")
        ]

    def __str__(self) -> str:
        return f"backup code #{self.pk} of device #{self.device_id}"


class StaffInvitation(models.Model):
    """A one-time, expiring permission to enrol an authenticator for one staff user.

    Issued by ``manage.py invite_staff`` (shell access: the platform's own operators),
    shown once; only its SHA-256 is stored. Without an open invitation a correct
    password never reaches enrolment, so an unenrolled account, or one whose 2FA was
    reset, cannot be claimed by whoever first knows its password.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_invitations"
    )
    token_sha256 = models.CharField(max_length=64, unique=True)
    issued_by = models.CharField(max_length=150)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "expires_at"], name="invitation_user_idx")]

    def __str__(self) -> str:
        return f"invitation #{self.pk} for user #{self.user_id}"
