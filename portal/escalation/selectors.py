"""Read queries of the escalation app: episodes for the dashboard and the metrics."""

from __future__ import annotations

from django.db.models import Count, Prefetch, QuerySet

from .models import Episode, EpisodeStatus, Notification

RECENT_EPISODES = 20


def open_and_recent_episodes(*, limit: int = RECENT_EPISODES) -> list[Episode]:
    """Every open episode, then the latest resolved ones, each with its notifications."""
    base: QuerySet[Episode] = Episode.objects.select_related("rule").prefetch_related(
        Prefetch("notifications", queryset=Notification.objects.order_by("id"))
    )
    open_ones = list(base.filter(status=EpisodeStatus.OPEN).order_by("-opened_at", "-id"))
    resolved = list(
        base.filter(status=EpisodeStatus.RESOLVED).order_by("-resolved_at", "-id")[:limit]
    )
    return open_ones + resolved


def open_episode_counts() -> dict[str, int]:
    """Kind -> open episodes (kinds without any are left out)."""
    return dict(
        Episode.objects.filter(status=EpisodeStatus.OPEN)
        .values("kind")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("kind", "n")
    )
