"""django-q2 schedules of the dead-letter app (created idempotently by ``ensure_schedules``)."""

from __future__ import annotations

EXPIRE_SCHEDULE = "deadletters.replay_requests_expire"


def ensure_schedules() -> list[str]:
    from django_q.models import Schedule

    # django-q2's scheduler wakes about twice a minute; a request's TTL is hours, so a
    # one-minute schedule expires requests well within a minute of their deadline.
    Schedule.objects.update_or_create(
        name=EXPIRE_SCHEDULE,
        defaults={
            "func": "deadletters.tasks.replay_requests_expire",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
    return [EXPIRE_SCHEDULE]
