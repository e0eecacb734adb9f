"""deploy/: the Grafana dashboard and the Prometheus rules query what /metrics exports.

A renamed or dropped metric would leave a panel empty or an alert silent forever; these
tests compare every metric name they use with a real scrape of the application. The
rules' behaviour itself is unit-tested by promtool (`make test-rules`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
METRIC_NAME = re.compile(r"\b(portal_[a-z0-9_]+|[a-z_]+:[a-z0-9_:]+)\b")
# Alerts that exist ahead of their metric (none now: no panel may use one until a scrape
# carries it).
NOT_YET_EXPORTED: set[str] = set()


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def rules() -> list[dict]:
    groups = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def names_in(expressions: list[str]) -> set[str]:
    # Label values in quotes ("sms.otp", "executor_error") are not metric names.
    return {m for e in expressions for m in METRIC_NAME.findall(re.sub(r'"[^"]*"', "", e))}


@pytest.fixture
def exported(client, db, settings) -> set[str]:
    """Every series name a scrape of this application can carry."""
    settings.METRICS_TOKEN = "scrape-token-for-tests"
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-for-tests")
    assert response.status_code == 200
    names: set[str] = set()
    for family in text_string_to_metric_families(response.content.decode()):
        names.add(family.name)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names |= {f"{family.name}_bucket", f"{family.name}_count", f"{family.name}_sum"}
    return names


def test_every_dashboard_metric_is_exported_or_recorded(exported):
    used = names_in(dashboard_expressions())
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    assert len(used) >= 20  # the dashboard covers the product, not a sample of it
    assert sorted(used - exported - recorded) == []
    assert not used & NOT_YET_EXPORTED


def test_every_rule_queries_exported_or_recorded_metrics(exported):
    all_rules = rules()
    recorded = {rule["record"] for rule in all_rules if "record" in rule}
    used = names_in([rule["expr"] for rule in all_rules])
    assert sorted(used - exported - recorded - NOT_YET_EXPORTED) == []
    # Once a scrape carries one, it leaves NOT_YET_EXPORTED (and may go on a panel).
    assert sorted(NOT_YET_EXPORTED & exported) == []
    # Each recording rule feeds an alert or a panel; none is dead.
    consumers = names_in([r["expr"] for r in all_rules if "alert" in r] + dashboard_expressions())
    assert sorted(recorded - consumers) == []
