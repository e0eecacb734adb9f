"""django-q2 schedules of the intents app (created idempotently by ``ensure_schedules``)."""

from __future__ import annotations


def ensure_schedules() -> list[str]:
    from django_q.models import Schedule

    # The dispatcher also sweeps every few seconds; this schedule is the safety net that
    # reclaims leases even when every dispatcher is down.
    Schedule.objects.update_or_create(
        name="intents.sweep_expired_leases",
        defaults={
            "func": "intents.tasks.sweep_expired_leases",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
    return ["intents.sweep_expired_leases"]
