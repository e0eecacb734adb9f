"""The evaluator: rules against the database, episodes opened and resolved, notifications
sent through the destinations' providers.

Each rule is evaluated under a lock on its row, so two evaluators running at once (two
workers picking up the schedule) serialise per rule: the second sees the episode the
first opened. Every notification is a row that one evaluator claims (a conditional
UPDATE, no lock held while the provider answers) before sending it, so it goes out
once; a send that fails transiently stays pending and is retried by the next
evaluation, without a new episode. An evaluator that dies mid-send leaves a claim that
runs out, and the notification is sent again: PagerDuty folds it by ``dedup_key``, a
webhook receiver by ``webhook-id``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q

from gateways.base import Outcome
from gateways.connections import connection_specs
from portal import clock
from portal.audit.services import Actor, audit_record
from portal.observability.logging import get_logger

from .conditions import CONDITIONS, Finding
from .models import (
    Episode,
    EpisodeStatus,
    EscalationRule,
    EscalationRuleRevision,
    Notification,
    NotificationAction,
    NotificationStatus,
)
from .notify import build_message, send
from .rules import DESTINATION_PROVIDERS

logger = get_logger(__name__)
# A claim outlives the send's hard timeout by this much before another may retry it.
CLAIM_MARGIN_S = 30.0
AUDIT_ACTIONS = {
    NotificationAction.TRIGGER: "escalation.triggered",
    NotificationAction.RESOLVE: "escalation.resolved",
}


@dataclasses.dataclass
class EvaluationReport:
    opened: list[str] = dataclasses.field(default_factory=list)  # dedup keys
    resolved: list[str] = dataclasses.field(default_factory=list)
    sent: int = 0
    failed: int = 0  # transient: retried at the next evaluation
    undeliverable: int = 0


def escalations_evaluate(*, now: dt.datetime | None = None) -> EvaluationReport:
    """Evaluate every rule once, then send what is pending. Safe to run concurrently."""
    now = now or clock.now()
    report = EvaluationReport()
    # Active rules, and retired ones still holding open episodes (these resolve).
    rule_ids = set(EscalationRule.objects.filter(is_active=True).values_list("pk", flat=True))
    rule_ids |= set(
        Episode.objects.filter(status=EpisodeStatus.OPEN).values_list("rule_id", flat=True)
    )
    for rule_id in sorted(rule_ids):
        _evaluate_rule(rule_id=rule_id, now=now, report=report)
    notifications_send_pending(now=now, report=report)
    return report


def _evaluate_rule(*, rule_id: int, now: dt.datetime, report: EvaluationReport) -> None:
    with transaction.atomic():
        rule = EscalationRule.objects.select_for_update().get(pk=rule_id)
        if rule.current_revision_id is None:
            return  # no revision recorded: nothing to evaluate
        revision = EscalationRuleRevision.objects.get(pk=rule.current_revision_id)
        spec = revision.spec
        condition = CONDITIONS.get(spec["kind"])
        if rule.is_active and condition is None:
            return  # a kind accepted in the file whose counters this build does not keep
        findings: dict[str, Finding] = {}
        if rule.is_active and condition is not None:
            findings = {f.subject: f for f in condition(spec["parameters"], now)}
        open_episodes = {
            e.subject: e for e in Episode.objects.filter(rule=rule, status=EpisodeStatus.OPEN)
        }
        for subject, finding in findings.items():
            if subject not in open_episodes:
                episode = _open_episode(rule=rule, spec=spec, finding=finding, now=now)
                if episode is not None:
                    report.opened.append(episode.dedup_key)
        for subject, episode in open_episodes.items():
            if subject not in findings:
                _resolve_episode(episode=episode, now=now)
                report.resolved.append(episode.dedup_key)


def _open_episode(
    *, rule: EscalationRule, spec: dict[str, Any], finding: Finding, now: dt.datetime
) -> Episode | None:
    earlier = Episode.objects.filter(rule=rule, subject=finding.subject)
    sequence = (earlier.aggregate(last=Max("sequence"))["last"] or 0) + 1
    # Unique per episode, and never one a restored or rebuilt database handed out before.
    dedup_key = f"{rule.key}/{finding.subject or 'service'}/{sequence}-{uuid.uuid4().hex[:8]}"
    try:
        with transaction.atomic():
            episode = Episode.objects.create(
                rule=rule,
                kind=spec["kind"],
                subject=finding.subject,
                sequence=sequence,
                dedup_key=dedup_key[:255],
                severity=spec["severity"],
                summary=finding.summary[:1024],
                details=finding.details,
                opened_at=now,
            )
    except IntegrityError:  # another evaluator opened this very episode
        return None
    for destination in spec["destinations"]:
        Notification.objects.create(
            episode=episode,
            destination=destination["connection"],
            recipients=destination.get("to", []),
            action=NotificationAction.TRIGGER,
            created_at=now,
        )
    logger.info("escalation.opened", dedup_key=episode.dedup_key, summary=episode.summary)
    return episode


def _resolve_episode(*, episode: Episode, now: dt.datetime) -> None:
    episode.status = EpisodeStatus.RESOLVED
    episode.resolved_at = now
    episode.save(update_fields=["status", "resolved_at"])
    # Resolve where the trigger went (the rule's destinations may have changed since).
    for trigger in episode.notifications.filter(action=NotificationAction.TRIGGER).exclude(
        status=NotificationStatus.UNDELIVERABLE
    ):
        Notification.objects.create(
            episode=episode,
            destination=trigger.destination,
            recipients=trigger.recipients,
            action=NotificationAction.RESOLVE,
            created_at=now,
        )
    logger.info("escalation.resolved", dedup_key=episode.dedup_key)


def notifications_send_pending(*, now: dt.datetime, report: EvaluationReport) -> None:
    pending = Notification.objects.filter(status=NotificationStatus.PENDING).order_by("id")
    for notification_id in list(pending.values_list("pk", flat=True)):
        _send_one(notification_id=notification_id, now=now, report=report)


def _claim(*, notification_id: int, now: dt.datetime) -> bool:
    """Take the notification for one send: a conditional UPDATE, so of two evaluators
    exactly one gets it, and no lock is held while the provider answers."""
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lte=now)
    hold = dt.timedelta(seconds=settings.ESCALATION_SEND_TIMEOUT_S + CLAIM_MARGIN_S)
    claimed = Notification.objects.filter(
        free, pk=notification_id, status=NotificationStatus.PENDING
    ).update(claimed_until=now + hold, attempts=F("attempts") + 1)
    return claimed == 1


def _send_one(*, notification_id: int, now: dt.datetime, report: EvaluationReport) -> None:
    notification = Notification.objects.select_related("episode__rule").get(pk=notification_id)
    episode = notification.episode
    if _trigger_pending(notification):
        return  # the trigger goes first
    if not _claim(notification_id=notification_id, now=now):
        return  # sent, or being sent, by another evaluator
    notification.refresh_from_db(fields=["attempts", "claimed_until"])
    spec = connection_specs([notification.destination]).get(notification.destination)
    if spec is None or spec.spec["provider"] not in DESTINATION_PROVIDERS:
        _give_up(notification, "connection is not an active ops destination", report)
        return
    result = send(spec, build_message(spec, episode, notification))
    notification.claimed_until = None
    if result.outcome is Outcome.ACCEPTED:
        _mark_sent(notification, provider=spec.spec["provider"], now=now)
        report.sent += 1
        return
    error = (result.error or result.outcome.value)[:500]
    if result.outcome is Outcome.REJECTED_PERMANENT:
        _give_up(notification, error, report)
        return
    notification.last_error = error
    notification.save(update_fields=["last_error", "claimed_until"])
    report.failed += 1
    logger.warning(
        "escalation.send_failed",
        dedup_key=episode.dedup_key,
        destination=notification.destination,
        error=error,
    )


def _trigger_pending(notification: Notification) -> bool:
    """A resolve whose episode's trigger to the same destination is still to be sent."""
    return notification.action == NotificationAction.RESOLVE and (
        Notification.objects.filter(
            episode=notification.episode,
            destination=notification.destination,
            action=NotificationAction.TRIGGER,
            status=NotificationStatus.PENDING,
        ).exists()
    )


def _mark_sent(notification: Notification, *, provider: str, now: dt.datetime) -> None:
    """The provider accepted it: sent, with its audit event, in one transaction."""
    episode = notification.episode
    with transaction.atomic():
        notification.status = NotificationStatus.SENT
        notification.sent_at = now
        notification.last_error = ""
        notification.save(update_fields=["status", "sent_at", "last_error", "claimed_until"])
        audit_record(
            actor=Actor.system("escalation"),
            action=AUDIT_ACTIONS[NotificationAction(notification.action)],
            object_type="escalation_episode",
            # the episode's row id: its dedup_key (up to 255 characters) does not fit
            # the audit event's object id, so it travels in the data
            object_id=episode.pk,
            data={
                "dedup_key": episode.dedup_key,
                "rule": episode.rule.key,
                "kind": episode.kind,
                "subject": episode.subject,
                "severity": episode.severity,
                "summary": episode.summary,
                "destination": notification.destination,
                "provider": provider,
                "attempts": notification.attempts,
            },
        )


def _give_up(notification: Notification, error: str, report: EvaluationReport) -> None:
    with transaction.atomic():
        notification.status = NotificationStatus.UNDELIVERABLE
        notification.last_error = error[:500]
        notification.claimed_until = None
        notification.save(update_fields=["status", "last_error", "claimed_until"])
        _audit_undeliverable(notification)
    report.undeliverable += 1


def _audit_undeliverable(notification: Notification) -> None:
    audit_record(
        actor=Actor.system("escalation"),
        action="escalation.undeliverable",
        object_type="escalation_episode",
        object_id=notification.episode_id,
        data={
            "dedup_key": notification.episode.dedup_key,
            "destination": notification.destination,
            "action": notification.action,
            "error": notification.last_error,
        },
    )
