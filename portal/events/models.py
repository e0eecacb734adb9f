"""Client webhooks: a tenant's endpoints and the events written for them (the outbox).

An event is delivered by the delivery engine as an internal intent (``intents.internal``)
whose public id is the event id, so ``webhook-id`` stays the same on every retry. The
endpoint's signing secrets are kept sealed (``gateways.secrets.seal``): encrypted, so
they can sign, and never readable from a row, a log line or an admin page.
"""

from __future__ import annotations

import uuid

from django.db import models

from intents.models import Intent, IntentStatus
from portal.accounts.models import Tenant

EVENT_TYPES = (
    "intent.accepted",
    "intent.delivered",
    "intent.undelivered",
    "intent.failed",
    "intent.exhausted",
    "intent.expired",
    "intent.cancelled",
    "intent.reopened",
    "webhook.test",
)


DELIVERY_STATUSES = ("pending", "delivered", "failed", "cancelled")
# A delivery's status from its internal intent's: pending while it waits or is retried,
# delivered on a 2xx, failed once given up (a dead letter).
_DELIVERY_STATUS_OF = {
    IntentStatus.PENDING: "pending",
    IntentStatus.IN_FLIGHT: "pending",
    IntentStatus.ACCEPTED: "delivered",
    IntentStatus.FAILED: "failed",
    IntentStatus.EXHAUSTED: "failed",
    IntentStatus.EXPIRED: "failed",
    IntentStatus.CANCELLED: "cancelled",
}


class EndpointStatus(models.TextChoices):
    ENABLED = "enabled"
    DISABLED = "disabled"


class DisabledReason(models.TextChoices):
    CLIENT = "client", "disabled by the client"
    GONE = "gone", "the endpoint answered 410 Gone"
    FAILING = "failing", "every attempt failed for WEBHOOK_DISABLE_AFTER_S"
    OPERATOR = "operator", "disabled by an operator"


class WebhookEndpoint(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    description = models.CharField(max_length=500, blank=True)
    event_types = models.JSONField(default=list, blank=True, help_text="Empty: every type.")
    status = models.CharField(
        max_length=16, choices=EndpointStatus.choices, default=EndpointStatus.ENABLED
    )
    secret_sealed = models.TextField()
    # The secret before the latest rotation: it signs too until previous_secret_until.
    previous_secret_sealed = models.TextField(blank=True)
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    # Since when every attempt has failed (None: the latest succeeded, or none yet).
    failing_since = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=16, choices=DisabledReason.choices, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["tenant", "-created_at"]
        indexes = [
            # The outbox: a batch's tenants' enabled endpoints, on every recording.
            models.Index(fields=["tenant", "status"], name="webhook_endpoint_tenant_idx"),
            # The escalation rule: endpoints disabled lately.
            models.Index(fields=["status", "disabled_at"], name="webhook_endpoint_disabled_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.url} ({self.status})"

    def subscribes_to(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookEvent(models.Model):
    """One event for one endpoint; its delivery is the internal intent ``intent``.

    ``public_id`` is the event id (``webhook-id``) and the intent's public id alike.
    """

    public_id = models.UUIDField(unique=True, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=32)
    # By the intent's public id: bulk inserts return no primary keys on SQL Server.
    intent = models.OneToOneField(
        Intent, to_field="public_id", on_delete=models.CASCADE, related_name="webhook_event"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["endpoint", "created_at"], name="webhook_event_endpoint_idx")
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.public_id}"

    @property
    def delivery_status(self) -> str:
        return _DELIVERY_STATUS_OF[IntentStatus(self.intent.status)]
