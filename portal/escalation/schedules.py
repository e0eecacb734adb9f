"""django-q2 schedule of the escalation evaluator (created idempotently by ``ensure_schedules``)."""

from __future__ import annotations

EVALUATE_SCHEDULE = "escalation.evaluate"


def ensure_schedules() -> list[str]:
    from django_q.models import Schedule

    # Every minute: the scheduler wakes about twice a minute, so a breach is seen within
    # a minute or two, and a failed send is retried as often.
    Schedule.objects.update_or_create(
        name=EVALUATE_SCHEDULE,
        defaults={
            "func": "portal.escalation.tasks.evaluate_escalations",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
    return [EVALUATE_SCHEDULE]
