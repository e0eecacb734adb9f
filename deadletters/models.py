"""Dead letters, remediation evidence and four-eyes replay requests."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from intents.models import Intent, ReasonCode
from portal.accounts.models import Tenant


class DeadLetterStatus(models.TextChoices):
    OPEN = "open"
    REPLAY_PENDING = "replay_pending"
    REPLAYED = "replayed"
    RESOLVED = "resolved"
    DISCARDED = "discarded"


# An unsettled dead letter still waits for an operator (assign, resolve, replay); a
# settled one only waits for its retention to run out.
UNSETTLED_STATUSES = (DeadLetterStatus.OPEN, DeadLetterStatus.REPLAY_PENDING)
SETTLED_STATUSES = tuple(s for s in DeadLetterStatus if s not in UNSETTLED_STATUSES)
# Reason codes a dead letter can carry (the terminal failures of CONTRACT.md).
DEAD_LETTER_REASONS = (
    ReasonCode.GATEWAY_REJECTED,
    ReasonCode.ATTEMPTS_EXHAUSTED,
    ReasonCode.DEADLINE_PASSED,
    ReasonCode.OUTCOME_UNKNOWN,
)


class DeadLetter(models.Model):
    """An intent generation that ended without delivery."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    intent = models.ForeignKey(Intent, on_delete=models.PROTECT, related_name="dead_letters")
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="+")
    target_key = models.CharField(max_length=100)
    generation = models.PositiveIntegerField()
    reason_code = models.CharField(max_length=32)
    status = models.CharField(
        max_length=16, choices=DeadLetterStatus.choices, default=DeadLetterStatus.OPEN
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    retention_until = models.DateTimeField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["intent", "generation"], name="uniq_dead_letter_gen")
        ]
        indexes = [
            models.Index(
                fields=["status", "reason_code", "created_at"], name="dl_status_reason_idx"
            ),
            models.Index(fields=["target_key", "created_at"], name="dl_target_idx"),
        ]

    def __str__(self) -> str:
        return f"dead letter {self.public_id} ({self.reason_code})"


class EvidenceKind(models.TextChoices):
    NOTE = "note"
    LINK = "link"
    FILE = "file"


class EvidenceQuerySet(models.QuerySet["Evidence"]):
    def update(self, **kwargs: object) -> int:
        raise PermissionError("evidence is append-only")


class Evidence(models.Model):
    """Remediation evidence on a dead letter; append-only.

    Rows are only ever inserted (``save`` refuses updates, ``delete`` refuses). Only the
    retention purge removes them, in bulk, once their dead letter's retention has passed.
    """

    dead_letter = models.ForeignKey(DeadLetter, on_delete=models.PROTECT, related_name="evidence")
    kind = models.CharField(max_length=8, choices=EvidenceKind.choices)
    note = models.TextField(blank=True)
    url = models.URLField(max_length=500, blank=True)
    file = models.FileField(upload_to="evidence/%Y/%m/", blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    size = models.PositiveIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()

    objects = EvidenceQuerySet.as_manager()

    class Meta:
        ordering = ["created_at"]
        verbose_name_plural = "evidence"

    def __str__(self) -> str:
        return f"{self.kind} on {self.dead_letter_id}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise PermissionError("evidence is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise PermissionError("evidence is append-only")


class ReplayStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    EXECUTING = "executing"
    DONE = "done"
    REJECTED = "rejected"
    EXPIRED = "expired"


class ReplayRequest(models.Model):
    """A set of dead letters to re-deliver, waiting for a second person's decision."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    reason = models.TextField()
    filters = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=ReplayStatus.choices, default=ReplayStatus.PENDING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decision_reason = models.TextField(blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Four eyes, enforced by the database too: nobody decides their own request.
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=F("requested_by")),
                name="replay_decider_not_requester",
            )
        ]
        indexes = [models.Index(fields=["status", "expires_at"], name="replay_status_idx")]

    def __str__(self) -> str:
        return f"replay {self.public_id} ({self.status})"


class ReplayItemOutcome(models.TextChoices):
    PENDING = "pending"
    REOPENED = "reopened"
    SKIPPED = "skipped"


class ReplayItem(models.Model):
    request = models.ForeignKey(ReplayRequest, on_delete=models.CASCADE, related_name="items")
    dead_letter = models.ForeignKey(DeadLetter, on_delete=models.PROTECT, related_name="+")
    outcome = models.CharField(
        max_length=16, choices=ReplayItemOutcome.choices, default=ReplayItemOutcome.PENDING
    )
    detail = models.CharField(max_length=255, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["request", "dead_letter"], name="uniq_replay_item")
        ]

    def __str__(self) -> str:
        return f"dead letter {self.dead_letter_id} in replay {self.request_id}: {self.outcome}"
