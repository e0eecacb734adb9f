"""Escalation rules (registry rows with revisions), their episodes and notifications."""

from __future__ import annotations

from django.db import models


class EscalationRule(models.Model):
    """One rule of ``escalations.toml``; its current revision holds what the file says."""

    key = models.CharField(max_length=100, unique=True)
    current_revision = models.ForeignKey(
        "EscalationRuleRevision", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class EscalationRuleRevision(models.Model):
    rule = models.ForeignKey(EscalationRule, on_delete=models.PROTECT, related_name="revisions")
    kind = models.CharField(max_length=40)
    spec = models.JSONField()
    checksum = models.CharField(max_length=64)
    source_path = models.CharField(max_length=500)
    diff = models.TextField(blank=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.rule_id} @ {self.checksum[:12]}"


class EpisodeStatus(models.TextChoices):
    OPEN = "open"
    RESOLVED = "resolved"


class Episode(models.Model):
    """One stretch of time during which a rule's condition held for one subject.

    ``sequence`` counts the episodes of (rule, subject): two evaluators that both see a
    new breach try to insert the same sequence, and the unique constraint lets one win.
    """

    rule = models.ForeignKey(EscalationRule, on_delete=models.PROTECT, related_name="episodes")
    kind = models.CharField(max_length=40)
    subject = models.CharField(max_length=200, blank=True)  # "target:sms.otp", "" = global
    sequence = models.PositiveIntegerField()
    dedup_key = models.CharField(max_length=255, unique=True)
    status = models.CharField(
        max_length=16, choices=EpisodeStatus.choices, default=EpisodeStatus.OPEN
    )
    severity = models.CharField(max_length=16)
    summary = models.CharField(max_length=1024)
    details = models.JSONField(default=dict, blank=True)
    opened_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "subject", "sequence"], name="uniq_escalation_episode"
            )
        ]
        indexes = [models.Index(fields=["status", "opened_at"], name="episode_status_idx")]

    def __str__(self) -> str:
        return f"{self.dedup_key} ({self.status})"


class NotificationAction(models.TextChoices):
    TRIGGER = "trigger"
    RESOLVE = "resolve"


class NotificationStatus(models.TextChoices):
    PENDING = "pending"  # not sent yet, or the last try failed transiently
    SENT = "sent"
    UNDELIVERABLE = "undeliverable"  # the connection is gone or refused it for good


class Notification(models.Model):
    """One message to one destination about one episode: at most one per action."""

    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="notifications")
    destination = models.CharField(max_length=100)  # a connection key
    recipients = models.JSONField(default=list, blank=True)  # smtp: the "to" addresses
    action = models.CharField(max_length=16, choices=NotificationAction.choices)
    status = models.CharField(
        max_length=16, choices=NotificationStatus.choices, default=NotificationStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    # While one evaluator sends, no other may: it claimed the row until then. A claim
    # whose evaluator died runs out, and the notification is sent again.
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["episode", "destination", "action"], name="uniq_escalation_notification"
            )
        ]
        indexes = [models.Index(fields=["status", "id"], name="notification_status_idx")]

    def __str__(self) -> str:
        return f"{self.action} {self.episode_id} -> {self.destination}: {self.status}"
