"""django-q2 entry point of the escalation evaluator."""

from __future__ import annotations

from .services import escalations_evaluate


def evaluate_escalations() -> dict[str, int]:
    report = escalations_evaluate()
    return {
        "opened": len(report.opened),
        "resolved": len(report.resolved),
        "sent": report.sent,
        "failed": report.failed,
        "undeliverable": report.undeliverable,
    }
