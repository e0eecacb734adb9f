"""Recording the rules of ``escalations.toml`` as revisions, like targets and connections."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from gateways.connections import ConnectionSpec, revision_diff
from intents.registry import RegistryChanges
from portal.audit.services import Actor, audit_record

from .models import EscalationRule, EscalationRuleRevision
from .rules import RuleSpec, load_escalations_file


def escalations_path() -> Path:
    return Path(settings.ESCALATIONS_FILE)


def escalations_apply(
    *, rules: list[RuleSpec], actor_label: str, label: str = "escalation rules"
) -> RegistryChanges:
    """Record what changed against the stored rules; call inside the sync's transaction.

    A rule left out of the file is retired (its open episodes resolve at the next
    evaluation); one put back with the same content is restored.
    """
    report = RegistryChanges(label=label)
    actor = Actor.system(actor_label)
    existing = {r.key: r for r in EscalationRule.objects.select_for_update().order_by("key")}
    revisions = EscalationRuleRevision.objects.in_bulk(
        [r.current_revision_id for r in existing.values() if r.current_revision_id]
    )
    for rule in rules:
        found = existing.get(rule.key)
        _rule_apply(
            rule=rule,
            found=found,
            current=revisions.get(found.current_revision_id) if found else None,
            actor=actor,
            actor_label=actor_label,
            report=report,
        )
    loaded = {rule.key for rule in rules}
    for key, row in existing.items():
        if key not in loaded and row.is_active:
            row.is_active = False
            row.save(update_fields=["is_active", "updated_at"])
            report.retired.append(key)
            audit_record(
                actor=actor,
                action="escalation_rule.retired",
                object_type="escalation_rule",
                object_id=key,
            )
    return report


def _rule_apply(
    *,
    rule: RuleSpec,
    found: EscalationRule | None,
    current: EscalationRuleRevision | None,
    actor: Actor,
    actor_label: str,
    report: RegistryChanges,
) -> None:
    """Create or revise one rule from the file (restoring a retired one left unchanged)."""
    if found is not None and current is not None and current.checksum == rule.checksum:
        if found.is_active:
            report.unchanged.append(rule.key)
            return
        found.is_active = True
        found.save(update_fields=["is_active", "updated_at"])
        report.revised.append(rule.key)
        audit_record(
            actor=actor,
            action="escalation_rule.restored",
            object_type="escalation_rule",
            object_id=rule.key,
            data={"checksum": rule.checksum, "source_path": str(rule.path)},
        )
        return
    row = found if found is not None else EscalationRule.objects.create(key=rule.key)
    revision = EscalationRuleRevision.objects.create(
        rule=row,
        kind=rule.kind,
        spec=rule.spec,
        checksum=rule.checksum,
        source_path=str(rule.path),
        diff=revision_diff(current.spec if current else None, rule.spec, rule.key),
        created_by=actor_label,
    )
    row.current_revision = revision
    row.is_active = True
    row.save(update_fields=["current_revision", "is_active", "updated_at"])
    (report.revised if current else report.created).append(rule.key)
    audit_record(
        actor=actor,
        action="escalation_rule.revised" if current else "escalation_rule.created",
        object_type="escalation_rule",
        object_id=rule.key,
        data={
            "kind": rule.kind,
            "destinations": [d["connection"] for d in rule.spec["destinations"]],
            "checksum": rule.checksum,
            "previous_checksum": current.checksum if current else None,
            "source_path": str(rule.path),
        },
    )


def escalations_sync(*, connections: list[ConnectionSpec], actor_label: str) -> RegistryChanges:
    """Load ``ESCALATIONS_FILE`` against this sync's connections and record it."""
    rules = load_escalations_file(escalations_path(), connections)
    return escalations_apply(rules=rules, actor_label=actor_label)
