"""``escalations.toml`` through ``sync_targets``: audited revisions, and a bad file refused
with its path named and nothing from that run applied."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError

from gateways.models import Connection
from intents.models import Target
from portal.audit.models import AuditEvent
from portal.escalation.models import EscalationRule, EscalationRuleRevision

GOOD = """
[[rule]]
key = "stale"
kind = "backlog.stale"
older_than_s = 120
destinations = ["pd", "chat"]
"""


def test_rules_are_loaded_with_revisions_and_audit(registry) -> None:
    output = registry(GOOD)
    assert "escalation rules created: stale" in output

    registry(GOOD.replace("120", "300"))
    registry(GOOD.replace("120", "300"))

    revision = EscalationRule.objects.get().current_revision
    assert revision is not None
    assert revision.spec["parameters"] == {"older_than_s": 300.0}
    assert revision.spec["severity"] == "error"
    assert EscalationRuleRevision.objects.count() == 2
    assert '"older_than_s": 300.0' in revision.diff
    assert list(
        AuditEvent.objects.filter(object_type="escalation_rule").values_list("action", flat=True)
    ) == ["escalation_rule.created", "escalation_rule.revised"]

    output = registry("# every rule commented out\n")
    assert "escalation rules retired: stale" in output
    assert not EscalationRule.objects.get().is_active


def test_the_shipped_example_holds_no_rules(db, settings) -> None:
    from django.core.management import call_command

    from tests.conftest import FIXTURE_TARGETS

    call_command("sync_targets", "--dir", str(FIXTURE_TARGETS))  # conf/escalations.toml
    assert not EscalationRule.objects.exists()


@pytest.mark.parametrize(
    ("rules", "reason"),
    [
        ("[[rule]\n", "not valid TOML"),
        ('[[rule]]\nkey = "x"\nkind = "disk.full"\ndestinations = ["pd"]\n', "kind must be"),
        (
            '[[rule]]\nkey = "x"\nkind = "backlog.stale"\ndestinations = ["pd"]\n',
            "backlog.stale needs older_than_s",
        ),
        (
            '[[rule]]\nkey = "x"\nkind = "backlog.stale"\nolder_than_s = -1\n'
            'destinations = ["pd"]\n',
            "older_than_s must be a positive number",
        ),
        (
            '[[rule]]\nkey = "x"\nkind = "backlog.stale"\nolder_than_s = 5\n'
            'destinations = ["sim-sms"]\n',
            "destination 'sim-sms' is a simulator connection; escalations go only through "
            "pagerduty, slack, webhook, smtp",
        ),
        (
            '[[rule]]\nkey = "x"\nkind = "backlog.stale"\nolder_than_s = 5\n'
            'destinations = ["nowhere"]\n',
            "destination 'nowhere' is not a connection",
        ),
        (
            '[[rule]]\nkey = "x"\nkind = "dead_letters.burst"\ncount = 2\n'
            'window_minutes = 5\nper = "planet"\ndestinations = ["pd"]\n',
            "per must be 'target' or 'tenant'",
        ),
        (GOOD + GOOD, "rule key 'stale' is defined twice"),
    ],
)
def test_a_bad_file_is_refused_and_nothing_is_applied(registry, settings, rules, reason) -> None:
    before = AuditEvent.objects.count()

    with pytest.raises(CommandError) as raised:
        registry(rules)

    message = str(raised.value)
    assert message.startswith("nothing applied: ")
    assert f"{settings.ESCALATIONS_FILE}: " in message
    assert reason in message
    # The same run's targets and connections were rolled back with the rules.
    assert not EscalationRule.objects.exists()
    assert not Connection.objects.exists()
    assert not Target.objects.exists()
    assert AuditEvent.objects.count() == before
