"""``escalations.toml``: what a rule may say, checked before anything is applied.

A file of comments only holds no rules (the shipped example); a missing file too. Every
problem is reported with the file's path; one bad rule applies nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from gateways.connections import ConnectionSpec, canonical_json

KINDS = (
    "dead_letters.burst",
    "backlog.stale",
    "sla.breach",
    "connection.circuit_open",
    "webhook_endpoint.disabled",
    "replay.failed",
)
# Escalations leave only through connections made for operators and people.
DESTINATION_PROVIDERS = ("pagerduty", "slack", "webhook", "smtp")
SEVERITIES = ("critical", "error", "warning", "info")
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,99}$")
COMMON_KEYS = {"key", "kind", "severity", "destinations", "description"}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


class EscalationFileError(ValueError):
    """The escalations file cannot be applied; the message names the path and why."""


def _whole(minimum: int) -> Callable[[str, Any], int]:
    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be a whole number >= {minimum}")
        return value

    return check


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{name} must be a positive number")
    return float(value)


def _percent(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 100:
        raise ValueError(f"{name} must be a percentage above 0 and at most 100")
    return float(value)


def _non_negative(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a number >= 0")
    return float(value)


def _per(name: str, value: Any) -> str:
    if value not in ("target", "tenant"):
        raise ValueError(f"{name} must be 'target' or 'tenant'")
    return str(value)


REQUIRED = object()
# kind -> parameter -> (check, default); REQUIRED parameters have no default.
KIND_PARAMETERS: dict[str, dict[str, tuple[Callable[[str, Any], Any], Any]]] = {
    "dead_letters.burst": {
        "count": (_whole(1), REQUIRED),
        "window_minutes": (_positive, REQUIRED),
        "per": (_per, "target"),
    },
    "backlog.stale": {"older_than_s": (_positive, REQUIRED)},
    "sla.breach": {
        "below_percent": (_percent, REQUIRED),
        "window_minutes": (_positive, REQUIRED),
        # Judge only a window whose outcomes are mostly known, and not on a handful.
        "min_coverage_percent": (_percent, 80.0),
        "min_intents": (_whole(1), 20),
    },
    "connection.circuit_open": {"for_s": (_non_negative, 0.0)},
    "webhook_endpoint.disabled": {},
    "replay.failed": {"count": (_whole(1), 1), "window_minutes": (_positive, 60.0)},
}


@dataclasses.dataclass(frozen=True, slots=True)
class RuleSpec:
    spec: dict[str, Any]
    path: Path

    @property
    def key(self) -> str:
        return str(self.spec["key"])

    @property
    def kind(self) -> str:
        return str(self.spec["kind"])

    @property
    def checksum(self) -> str:
        return hashlib.sha256(canonical_json(self.spec).encode()).hexdigest()


def _destinations(raw: Any, providers: dict[str, str]) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise ValueError("destinations must be a non-empty list of connection keys")
    found: list[dict[str, Any]] = []
    for entry in raw:
        destination = _destination(entry, providers)
        key = destination["connection"]
        if any(d["connection"] == key for d in found):
            raise ValueError(f"destination {key!r} is listed twice")
        found.append(destination)
    return found


def _destination(entry: Any, providers: dict[str, str]) -> dict[str, Any]:
    """One destination: a connection key, or a table with one and (smtp only) ``to``."""
    table = {"connection": entry} if isinstance(entry, str) else entry
    if not isinstance(table, dict) or not isinstance(table.get("connection"), str):
        raise ValueError('each destination is a connection key or {connection = "…"}')
    unknown = set(table) - {"connection", "to"}
    if unknown:
        raise ValueError(f"unknown keys in a destination: {', '.join(sorted(unknown))}")
    key = table["connection"]
    provider = providers.get(key)
    if provider is None:
        raise ValueError(f"destination {key!r} is not a connection in CONNECTIONS_DIR")
    if provider not in DESTINATION_PROVIDERS:
        raise ValueError(
            f"destination {key!r} is a {provider} connection; escalations go only "
            f"through {', '.join(DESTINATION_PROVIDERS)}"
        )
    destination: dict[str, Any] = {"connection": key}
    to = table.get("to")
    if provider == "smtp":
        if not isinstance(to, list) or not to or not all(_is_address(a) for a in to):
            raise ValueError(f"destination {key!r} (smtp) needs to = [addresses]")
        destination["to"] = list(to)
    elif to is not None:
        raise ValueError(f"destination {key!r}: 'to' is only for smtp connections")
    return destination


def _is_address(value: Any) -> bool:
    return isinstance(value, str) and EMAIL.match(value) is not None


def validate_rule(raw: Any, providers: dict[str, str]) -> dict[str, Any]:
    """One ``[[rule]]`` table, normalised; ValueError says what is wrong."""
    if not isinstance(raw, dict):
        raise ValueError("each [[rule]] must be a table")
    key = raw.get("key")
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise ValueError("key must be lower-case letters, digits, '.', '_' or '-'")
    kind = raw.get("kind")
    if kind not in KIND_PARAMETERS:
        raise ValueError(f"rule {key!r}: kind must be one of {', '.join(KINDS)}")
    unknown = set(raw) - COMMON_KEYS - set(KIND_PARAMETERS[kind])
    if unknown:
        raise ValueError(f"rule {key!r}: unknown keys for {kind}: {', '.join(sorted(unknown))}")
    severity = raw.get("severity", "error")
    if severity not in SEVERITIES:
        raise ValueError(f"rule {key!r}: severity must be one of {', '.join(SEVERITIES)}")
    try:
        values = _parameters(raw, kind)
        destinations = _destinations(raw.get("destinations"), providers)
    except ValueError as exc:
        raise ValueError(f"rule {key!r}: {exc}") from None
    return {
        "key": key,
        "kind": kind,
        "severity": severity,
        "description": str(raw.get("description", "")),
        "parameters": values,
        "destinations": destinations,
    }


def _parameters(raw: dict[str, Any], kind: str) -> dict[str, Any]:
    """The kind's parameters: each as given (checked) or its default; a required one absent
    is an error."""
    values: dict[str, Any] = {}
    for name, (check, default) in KIND_PARAMETERS[kind].items():
        if name in raw:
            values[name] = check(name, raw[name])
        elif default is REQUIRED:
            raise ValueError(f"{kind} needs {name}")
        else:
            values[name] = default
    return values


def load_escalations_file(path: Path, connections: Iterable[ConnectionSpec]) -> list[RuleSpec]:
    """The rules of ``path`` (none when it is missing or holds only comments), checked
    against the connections this sync loads; EscalationFileError names every problem."""
    if not path.exists():
        return []
    tables = _rule_tables(path)
    providers = {spec.key: str(spec.spec["provider"]) for spec in connections}
    rules: list[RuleSpec] = []
    problems: list[str] = []
    for table in tables:
        try:
            rules.append(RuleSpec(spec=validate_rule(table, providers), path=path))
        except ValueError as exc:
            problems.append(f"{path}: {exc}")
    seen: set[str] = set()
    for rule in rules:
        if rule.key in seen:
            problems.append(f"{path}: rule key {rule.key!r} is defined twice")
        seen.add(rule.key)
    if problems:
        raise EscalationFileError("; ".join(problems))
    return rules


def _rule_tables(path: Path) -> list[Any]:
    """The file's ``[[rule]]`` tables, unchecked; EscalationFileError for anything else."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise EscalationFileError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise EscalationFileError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(raw) - {"rule"}
    if unknown:
        raise EscalationFileError(
            f"{path}: unknown keys: {', '.join(sorted(unknown))} (rules are [[rule]] tables)"
        )
    tables = raw.get("rule", [])
    if not isinstance(tables, list):
        raise EscalationFileError(f"{path}: rules are [[rule]] tables")
    return tables
