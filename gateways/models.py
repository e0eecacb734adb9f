"""Connections (registry data like targets) and their shared health: circuit and throttle.

Gateways know nothing of intents: these rows describe ways out and how they fare. The
health rows are keyed by connection key, not a foreign key, so the built-in simulator
connections (which have no file) keep health like any other.
"""

from __future__ import annotations

from django.db import models


class Connection(models.Model):
    """A registry entry; its current settings live in ``current_revision``."""

    key = models.CharField(max_length=100, unique=True)
    current_revision = models.ForeignKey(
        "ConnectionRevision", null=True, on_delete=models.PROTECT, related_name="+"
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


class ConnectionRevision(models.Model):
    """One loaded state of a connection file. ``spec`` holds secret references, never values."""

    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="revisions")
    provider = models.CharField(max_length=32)
    channel = models.CharField(max_length=16)
    spec = models.JSONField()
    checksum = models.CharField(max_length=64)
    source_path = models.CharField(max_length=500)
    diff = models.TextField(blank=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["connection", "-id"]
        get_latest_by = "id"

    def __str__(self) -> str:
        return f"{self.connection.key} {self.provider} ({self.checksum[:8]})"


class CircuitState(models.TextChoices):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class ConnectionHealth(models.Model):
    """A connection's circuit breaker, shared by every worker; counts over a fixed window.

    ``probe_until``: while half-open, one caller holds the single probe until then; if it
    never reports (its worker died), another may probe after it.
    """

    connection_key = models.CharField(max_length=100, unique=True)
    state = models.CharField(
        max_length=16, choices=CircuitState.choices, default=CircuitState.CLOSED
    )
    window_started_at = models.DateTimeField()
    window_calls = models.PositiveIntegerField(default=0)
    window_failures = models.PositiveIntegerField(default=0)
    opened_at = models.DateTimeField(null=True, blank=True)
    open_until = models.DateTimeField(null=True, blank=True)
    probe_until = models.DateTimeField(null=True, blank=True)
    # For the admin's health view: what happened lately.
    total_calls = models.PositiveBigIntegerField(default=0)
    total_failures = models.PositiveBigIntegerField(default=0)
    last_outcome = models.CharField(max_length=24, blank=True)
    last_outcome_at = models.DateTimeField(null=True, blank=True)
    last_failure = models.CharField(max_length=200, blank=True)
    throttle_waits = models.PositiveBigIntegerField(default=0)
    circuit_deferrals = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["connection_key"]
        verbose_name_plural = "connection health"

    def __str__(self) -> str:
        return f"{self.connection_key}: {self.state}"


class ConnectionThrottle(models.Model):
    """A token bucket per connection (``rate_per_second``), shared by every worker."""

    connection_key = models.CharField(max_length=100, unique=True)
    tokens = models.FloatField()
    refilled_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.connection_key}: {self.tokens:.2f} tokens"
