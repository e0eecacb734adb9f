from __future__ import annotations

from django.db import models


class WorkerHeartbeat(models.Model):
    """Last sign of life of each dispatcher or worker process (read by /readyz)."""

    worker_id = models.CharField(max_length=128, unique=True)
    kind = models.CharField(max_length=32)
    seen_at = models.DateTimeField()
    info = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.worker_id}"
