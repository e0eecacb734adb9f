"""The target registry, intents and their attempts."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from gateways.base import Outcome
from portal.accounts.models import Tenant


class Target(models.Model):
    """A registry entry; its current contract lives in ``current_revision``."""

    key = models.CharField(max_length=100, unique=True)
    current_revision = models.ForeignKey(
        "TargetRevision", null=True, on_delete=models.PROTECT, related_name="+"
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key

    @property
    def revision(self) -> TargetRevision:
        """The current revision of a loaded target (``sync_targets`` always sets one)."""
        if self.current_revision is None:
            raise LookupError(f"target {self.key} has no revision loaded")
        return self.current_revision


class TargetRevision(models.Model):
    """One loaded state of a target file: who, when, checksum, diff and the contract."""

    target = models.ForeignKey(Target, on_delete=models.PROTECT, related_name="revisions")
    version = models.CharField(max_length=16)
    major = models.PositiveIntegerField()
    minor = models.PositiveIntegerField()
    gateway = models.CharField(max_length=16)
    contract = models.JSONField()
    checksum = models.CharField(max_length=64)
    source_path = models.CharField(max_length=500)
    diff = models.TextField(blank=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["target", "-id"]
        get_latest_by = "id"

    def __str__(self) -> str:
        return f"{self.target.key} {self.version} ({self.checksum[:8]})"


class IntentStatus(models.TextChoices):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    ACCEPTED = "accepted"
    FAILED = "failed"
    EXHAUSTED = "exhausted"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


OPEN_STATUSES = (IntentStatus.PENDING, IntentStatus.IN_FLIGHT)
TERMINAL_STATUSES = tuple(s for s in IntentStatus if s not in OPEN_STATUSES)
DEAD_LETTER_STATUSES = (IntentStatus.FAILED, IntentStatus.EXHAUSTED, IntentStatus.EXPIRED)


class ReasonCode(models.TextChoices):
    GATEWAY_ACCEPTED = "gateway_accepted"
    GATEWAY_REJECTED = "gateway_rejected"
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"
    DEADLINE_PASSED = "deadline_passed"
    CANCELLED_BY_CLIENT = "cancelled_by_client"
    # at_most_once: the attempt may have reached the recipient, so it is never retried.
    OUTCOME_UNKNOWN = "outcome_unknown"
    # A dead letter's reason only: the gateway accepted it (the intent's reason stays
    # gateway_accepted), then the provider's receipt said it never arrived.
    DELIVERY_FAILED = "delivery_failed"


class DeliveryStatus(models.TextChoices):
    """What the provider's receipts said after acceptance; null before acceptance."""

    SENT = "sent"  # accepted; a receipt is expected
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    UNKNOWN = "unknown"  # accepted through a connection that sends no receipts


FINAL_DELIVERY_STATUSES = (DeliveryStatus.DELIVERED, DeliveryStatus.UNDELIVERED)


class Intent(models.Model):
    """A client's request to deliver one payload to one target.

    The integer primary key keeps SQL Server's clustered index append-only; clients
    only ever see ``public_id``.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="intents")
    idempotency_key = models.CharField(max_length=255)
    target = models.ForeignKey(Target, on_delete=models.PROTECT, related_name="intents")
    target_key = models.CharField(max_length=100)
    requested_version = models.CharField(max_length=16, blank=True)
    contract_version = models.CharField(max_length=16)
    target_revision = models.ForeignKey(
        TargetRevision, on_delete=models.PROTECT, related_name="intents"
    )
    contract = models.JSONField(help_text="The resolved contract, frozen at submission.")
    payload = models.BinaryField()
    payload_sha256 = models.CharField(max_length=64)
    metadata = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=16, choices=IntentStatus.choices, default=IntentStatus.PENDING
    )
    attempts_count = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(
        help_text="Attempt budget, cumulative over generations."
    )
    attempt_timeout_s = models.FloatField(help_text="From the contract; sizes the lease.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField()
    requested_deadline_s = models.FloatField(
        null=True,
        blank=True,
        help_text="The request's deadline_seconds, compared when its idempotency key is reused.",
    )
    cancel_requested = models.BooleanField(default=False)
    reason_code = models.CharField(max_length=32, choices=ReasonCode.choices, blank=True)
    gateway_message_id = models.CharField(max_length=128, blank=True)
    correlation_id = models.CharField(max_length=64, blank=True)
    # The W3C traceparent of the request that created the intent (tracing on): the
    # claim and each attempt link back to it (portal/observability/tracing.py).
    traceparent = models.CharField(max_length=55, blank=True, default="")
    generation = models.PositiveIntegerField(default=1)
    # Made by the service on its own account (a client webhook event's delivery), not
    # submitted by a client: never shown to one, outside its quota, and it raises no
    # events of its own.
    internal = models.BooleanField(default=False)
    # The connection of the latest attempt, and where in the target's list the next
    # attempt starts (a transient failure moves it on: failover).
    connection = models.CharField(max_length=100, blank=True)
    connection_cursor = models.PositiveSmallIntegerField(default=0)
    delivery_status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, null=True, blank=True
    )
    # Our clock (received_at of the final receipt), like every other intent timestamp;
    # the provider's own time is on the receipt rows (docs/operations.md, dual time).
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"], name="uniq_intent_tenant_idem_key"
            ),
        ]
        indexes = [
            # The dispatcher's claim: one tenant's due intents, oldest first. Filtered on
            # one equality so SQL Server can build it as a filtered index.
            models.Index(
                fields=["tenant", "next_attempt_at"],
                name="intent_due_idx",
                condition=Q(status="pending"),
            ),
            # The sweeper: in-flight intents whose lease has run out.
            models.Index(
                fields=["lease_expires_at"],
                name="intent_lease_idx",
                condition=Q(status="in_flight"),
            ),
            # The same two queries on SQL Server: Django binds `status` as a parameter, and
            # a cached plan may not use a filtered index whose filter column is bound, so
            # there the claim and the sweeper seek these (tests/mssql, docs/sqlserver.md).
            # The first also serves per-tenant counts by status (the open-intent quota).
            models.Index(
                fields=["tenant", "status", "next_attempt_at"], name="intent_tenant_due_idx"
            ),
            models.Index(fields=["status", "lease_expires_at"], name="intent_status_lease_idx"),
            # The dispatcher's look for tenants with work due (intents/due_tenants.py):
            # a range on the due time over all tenants, answered from the index alone.
            models.Index(
                fields=["status", "next_attempt_at", "tenant"], name="intent_status_due_idx"
            ),
            models.Index(fields=["tenant", "created_at"], name="intent_tenant_created_idx"),
            models.Index(fields=["status", "finished_at"], name="intent_finished_idx"),
            # A receipt names the provider's message id and arrives at its connection.
            models.Index(fields=["gateway_message_id", "connection"], name="intent_message_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.target_key} {self.public_id}"

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def dead_letter_reason(self) -> str | None:
        """Why this generation is a dead letter, or None: a terminal failure, or an
        accepted message whose receipt said it was never delivered."""
        if self.status in DEAD_LETTER_STATUSES:
            return self.reason_code
        if self.status == IntentStatus.ACCEPTED and self.delivery_status == "undelivered":
            return ReasonCode.DELIVERY_FAILED
        return None


class AttemptOutcome(models.TextChoices):
    """A gateway's ``Outcome`` (the one source of those values), plus the engine's own
    ``lease_lost``: the worker lost the intent before it could record the result."""

    ACCEPTED = Outcome.ACCEPTED.value
    REJECTED_PERMANENT = Outcome.REJECTED_PERMANENT.value
    REJECTED_TRANSIENT = Outcome.REJECTED_TRANSIENT.value
    TIMEOUT = Outcome.TIMEOUT.value
    EXECUTOR_ERROR = Outcome.EXECUTOR_ERROR.value
    LEASE_LOST = "lease_lost"


class Attempt(models.Model):
    """One delivery attempt, written in the transaction that records the intent's new state."""

    intent = models.ForeignKey(Intent, on_delete=models.CASCADE, related_name="attempt_rows")
    number = models.PositiveIntegerField()
    generation = models.PositiveIntegerField(default=1)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    outcome = models.CharField(max_length=24, choices=AttemptOutcome.choices)
    gateway_status = models.PositiveSmallIntegerField(null=True, blank=True)
    gateway_message_id = models.CharField(max_length=128, blank=True)
    error = models.CharField(max_length=500, blank=True)
    worker_id = models.CharField(max_length=64, blank=True)
    retry_after_s = models.FloatField(null=True, blank=True)
    connection = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["intent", "number"]
        constraints = [
            models.UniqueConstraint(fields=["intent", "number"], name="uniq_attempt_number")
        ]
        indexes = [models.Index(fields=["finished_at"], name="attempt_finished_idx")]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.intent_id}: {self.outcome}"


class ApiRateWindow(models.Model):
    """Requests counted per tenant per minute window, shared by every web process."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "window_start"], name="uniq_rate_window")
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id} @ {self.window_start}: {self.count}"


class Suppression(models.Model):
    """A recipient a provider said can never be reached on this channel, for one tenant.

    Stored as a keyed hash (HMAC-SHA256, ``SUPPRESSION_HASH_KEY``) and a masked form for
    people; the address itself is never kept.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="suppressions")
    channel = models.CharField(max_length=16)
    recipient_hash = models.CharField(max_length=64)
    recipient_masked = models.CharField(max_length=64)
    connection = models.CharField(max_length=100, blank=True)
    provider_code = models.CharField(max_length=64, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    intent_public_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "channel", "recipient_hash"], name="uniq_suppression"
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.recipient_masked}"


class ReceiptStatus(models.TextChoices):
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"


class Receipt(models.Model):
    """One status report a provider sent about an intent's accepted message.

    Two clocks, never mixed in one figure: ``occurred_at`` is the provider's (when it
    says the status happened), ``received_at`` ours (when the report reached us).
    ``flagged_before_attempt``: the provider dated it before our attempt started (its
    clock or ours is off); it is kept, but left out of provider-clock latency.
    """

    intent = models.ForeignKey(Intent, on_delete=models.CASCADE, related_name="receipts")
    generation = models.PositiveIntegerField()
    connection = models.CharField(max_length=100)
    message_id = models.CharField(max_length=128)
    status = models.CharField(max_length=16, choices=ReceiptStatus.choices)
    provider_status = models.CharField(max_length=32, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()
    flagged_before_attempt = models.BooleanField(default=False)
    # Whether it moved the intent's delivery status (a duplicate or a late one did not).
    applied = models.BooleanField(default=False)

    class Meta:
        ordering = ["intent", "received_at", "id"]
        indexes = [models.Index(fields=["intent", "received_at"], name="receipt_intent_idx")]

    def __str__(self) -> str:
        return f"receipt {self.status} for {self.intent_id}"
