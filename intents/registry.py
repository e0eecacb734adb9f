"""The target registry: TOML masters in ``conf/targets/``, loaded by ``sync_targets``.

A run validates every file first and applies nothing unless all are valid. Each change
becomes a TargetRevision with its checksum and a diff, and an audit event.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
from django.conf import settings
from django.db import transaction

from gateways.connections import (
    ConnectionFileError,
    ConnectionSpec,
    ConnectionSyncReport,
    canonical_json,
    connections_apply,
    known_channels,
    load_connections_directory,
    revision_diff,
)
from portal.audit.services import Actor, audit_record

from .errors import RegistryError
from .models import Target, TargetRevision
from .retry import STRATEGIES
from .signals import registry_applying

GATEWAYS = ("sms", "push", "http", "email")
DELIVERY_MODES = ("at_least_once", "at_most_once")
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,99}$")
VERSION_PATTERN = re.compile(r"^(0|[1-9][0-9]{0,5})\.(0|[1-9][0-9]{0,5})$")
TOP_LEVEL_KEYS = {
    "key",
    "version",
    "gateway",
    "attempt_timeout_s",
    "acceptance_deadline_s",
    "retry",
    "schema",
    "sensitive_fields",
    "description",
    "connections",
    "delivery",
}
RETRY_KEYS = {"strategy", "initial_delay_s", "multiplier", "max_delay_s", "max_attempts"}
MAX_ATTEMPTS_LIMIT = 100
MAX_ATTEMPT_TIMEOUT_S = 60.0


def parse_version(text: str) -> tuple[int, int]:
    match = VERSION_PATTERN.fullmatch(text)
    if not match:
        raise ValueError(f"version {text!r} is not MAJOR.MINOR")
    return int(match.group(1)), int(match.group(2))


def is_compatible(*, registry_version: str, requested_version: str) -> bool:
    """Same MAJOR, and the registry's MINOR at least the requested one."""
    reg_major, reg_minor = parse_version(registry_version)
    req_major, req_minor = parse_version(requested_version)
    return reg_major == req_major and reg_minor >= req_minor


@dataclasses.dataclass(frozen=True)
class TargetSpec:
    path: Path
    contract: dict[str, Any]

    @property
    def key(self) -> str:
        key: str = self.contract["key"]
        return key

    @property
    def checksum(self) -> str:
        return contract_checksum(self.contract)


def contract_checksum(contract: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(contract).encode()).hexdigest()


def _number(table: dict[str, Any], name: str, where: str, *, minimum: float, strict: bool) -> float:
    value = table.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where}{name} must be a number of seconds")
    if value < minimum or (strict and value == minimum):
        raise ValueError(f"{where}{name} must be {'>' if strict else '>='} {minimum}")
    return float(value)


def validate_contract(raw: dict[str, Any]) -> dict[str, Any]:
    """Check one parsed file and return its normalised contract; ValueError says why."""
    key, version, gateway = _validated_identity(raw)
    timeout, deadline = _validated_timing(raw)
    retry = _validated_retry(raw)
    schema, sensitive = _validated_schema(raw)
    optional = _validated_routing(raw)
    return {
        **optional,
        "key": key,
        "version": version,
        "gateway": gateway,
        "description": str(raw.get("description", "")),
        "attempt_timeout_s": timeout,
        "acceptance_deadline_s": deadline,
        "retry": retry,
        "schema": schema,
        "sensitive_fields": sorted(set(sensitive)),
    }


def _validated_identity(raw: dict[str, Any]) -> tuple[str, str, str]:
    """No unknown key, then the target's key, version and gateway."""
    unknown = set(raw) - TOP_LEVEL_KEYS
    if unknown:
        raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
    key = raw.get("key")
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise ValueError("key must be lower-case letters, digits, '.', '_' or '-'")
    version = raw.get("version")
    if not isinstance(version, str):
        raise ValueError('version must be a string "MAJOR.MINOR"')
    parse_version(version)
    gateway = raw.get("gateway")
    if gateway not in GATEWAYS:
        raise ValueError(f"gateway must be one of {', '.join(GATEWAYS)}")
    return key, version, gateway


def _validated_timing(raw: dict[str, Any]) -> tuple[float, float]:
    """The attempt timeout and the acceptance deadline, the first shorter than the second."""
    timeout = _number(raw, "attempt_timeout_s", "", minimum=0, strict=True)
    if timeout > MAX_ATTEMPT_TIMEOUT_S:
        # A batch runs inside one django-q2 task whose own timeout must not cut it short.
        raise ValueError(f"attempt_timeout_s must be at most {MAX_ATTEMPT_TIMEOUT_S:g}")
    deadline = _number(raw, "acceptance_deadline_s", "", minimum=0, strict=True)
    if timeout >= deadline:
        raise ValueError("attempt_timeout_s must be shorter than acceptance_deadline_s")
    return timeout, deadline


def _validated_retry(raw: dict[str, Any]) -> dict[str, Any]:
    """The ``[retry]`` table, normalised."""
    retry = raw.get("retry")
    if not isinstance(retry, dict):
        raise ValueError("[retry] table is missing")
    unknown = set(retry) - RETRY_KEYS
    if unknown:
        raise ValueError(f"unknown keys in [retry]: {', '.join(sorted(unknown))}")
    if retry.get("strategy") not in STRATEGIES:
        raise ValueError(f"retry.strategy must be one of {', '.join(STRATEGIES)}")
    initial = _number(retry, "initial_delay_s", "retry.", minimum=0, strict=False)
    multiplier = _number(retry, "multiplier", "retry.", minimum=1, strict=False)
    max_delay = _number(retry, "max_delay_s", "retry.", minimum=0, strict=False)
    if max_delay < initial:
        raise ValueError("retry.max_delay_s must be >= retry.initial_delay_s")
    max_attempts = retry.get("max_attempts")
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
        raise ValueError("retry.max_attempts must be a whole number")
    if not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT:
        raise ValueError(f"retry.max_attempts must be between 1 and {MAX_ATTEMPTS_LIMIT}")
    return {
        "strategy": retry["strategy"],
        "initial_delay_s": initial,
        "multiplier": multiplier,
        "max_delay_s": max_delay,
        "max_attempts": max_attempts,
    }


def _validated_schema(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The payload's JSON Schema, and the payload fields to redact."""
    schema = raw.get("schema")
    if not isinstance(schema, dict):
        raise ValueError("[schema] table (the payload's JSON Schema) is missing")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValueError(f"schema is not a valid JSON Schema: {exc.message}") from None
    sensitive = raw.get("sensitive_fields", [])
    if not isinstance(sensitive, list) or not all(isinstance(f, str) for f in sensitive):
        raise ValueError("sensitive_fields must be a list of payload field names")
    return schema, sensitive


def _validated_routing(raw: dict[str, Any]) -> dict[str, Any]:
    """The v1.1 keys (``connections``, ``delivery``), only those the file gives.

    A file without them keeps the checksum it had, so a sync after the upgrade revises
    nothing.
    """
    connections = raw.get("connections")
    if connections is not None and (
        not isinstance(connections, list)
        or not connections
        or not all(isinstance(c, str) and c for c in connections)
        or len(set(connections)) != len(connections)
    ):
        raise ValueError("connections must be a non-empty list of distinct connection keys")
    delivery = raw.get("delivery")
    if delivery is not None and delivery not in DELIVERY_MODES:
        raise ValueError(f"delivery must be one of {', '.join(DELIVERY_MODES)}")
    optional: dict[str, Any] = {}
    if connections is not None:
        optional["connections"] = list(connections)
    if delivery is not None:
        optional["delivery"] = delivery
    return optional


def load_target_file(path: Path) -> TargetSpec:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{path}: not valid TOML: {exc}") from None
    try:
        return TargetSpec(path=path, contract=validate_contract(raw))
    except ValueError as exc:
        raise RegistryError(f"{path}: {exc}") from None


def load_directory(directory: Path) -> list[TargetSpec]:
    """Every ``*.toml`` in ``directory``, all valid, or a RegistryError naming each bad one."""
    if not directory.is_dir():
        raise RegistryError(f"{directory}: not a directory")
    paths = sorted(directory.glob("*.toml"))
    if not paths:
        raise RegistryError(
            f"{directory}: no target files (*.toml); refusing to retire every target"
        )
    specs, problems = [], []
    for path in paths:
        try:
            specs.append(load_target_file(path))
        except RegistryError as exc:
            problems.append(exc.detail)
    seen: dict[str, Path] = {}
    for spec in specs:
        if spec.key in seen:
            problems.append(f"{spec.path}: key {spec.key!r} is also defined in {seen[spec.key]}")
        seen[spec.key] = spec.path
    if problems:
        raise RegistryError("; ".join(problems))
    return specs


@dataclasses.dataclass
class RegistryChanges:
    """What a ``registry_applying`` subscriber recorded, reported under ``label``."""

    label: str
    created: list[str] = dataclasses.field(default_factory=list)
    revised: list[str] = dataclasses.field(default_factory=list)
    unchanged: list[str] = dataclasses.field(default_factory=list)
    retired: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class SyncReport:
    created: list[str] = dataclasses.field(default_factory=list)
    revised: list[str] = dataclasses.field(default_factory=list)
    unchanged: list[str] = dataclasses.field(default_factory=list)
    retired: list[str] = dataclasses.field(default_factory=list)
    connections: ConnectionSyncReport = dataclasses.field(default_factory=ConnectionSyncReport)
    # What subscribers of ``registry_applying`` recorded (escalation rules).
    others: list[RegistryChanges] = dataclasses.field(default_factory=list)


def load_connections(directory: Path) -> list[ConnectionSpec]:
    """The connection files, all valid, or a RegistryError naming each bad one."""
    try:
        return load_connections_directory(directory)
    except ConnectionFileError as exc:
        raise RegistryError(str(exc)) from None


def check_target_connections(specs: list[TargetSpec], connections: list[ConnectionSpec]) -> None:
    """Every connection a target names exists and serves the target's channel."""
    channels = known_channels(connections)
    problems = []
    for spec in specs:
        for key in spec.contract.get("connections", []):
            channel = channels.get(key)
            if channel is None:
                problems.append(f"{spec.path}: unknown connection {key!r}")
            elif channel != spec.contract["gateway"]:
                problems.append(
                    f"{spec.path}: connection {key!r} serves {channel}, "
                    f"not {spec.contract['gateway']}"
                )
    if problems:
        raise RegistryError("; ".join(problems))


def _check_version_moves_forward(spec: TargetSpec, current: TargetRevision) -> None:
    old, new = parse_version(current.version), parse_version(spec.contract["version"])
    if new < old:
        raise RegistryError(
            f"{spec.path}: version {spec.contract['version']} is older than the registry's "
            f"{current.version}"
        )
    if new == old:
        raise RegistryError(
            f"{spec.path}: contract changed but version {current.version} did not; "
            "raise MINOR for a compatible change or MAJOR for a breaking one"
        )


def registry_sync(
    *,
    directory: Path,
    actor_label: str = "sync_targets",
    connections_directory: Path | None = None,
) -> SyncReport:
    """Load every target file in ``directory`` and every connection file in
    ``connections_directory`` (``CONNECTIONS_DIR``), and record what changed, all or
    nothing."""
    specs = load_directory(Path(directory))
    connection_specs = load_connections(Path(connections_directory or settings.CONNECTIONS_DIR))
    check_target_connections(specs, connection_specs)
    report = SyncReport()
    actor = Actor.system(actor_label)
    with transaction.atomic():
        report.connections = connections_apply(specs=connection_specs, actor_label=actor_label)
        targets = _locked_targets()
        for spec in specs:
            _target_apply(
                spec=spec,
                found=targets.get(spec.key),
                actor=actor,
                actor_label=actor_label,
                report=report,
            )
        loaded = {spec.key for spec in specs}
        for key, target in targets.items():
            if key not in loaded and target.is_active:
                target.is_active = False
                target.save(update_fields=["is_active", "updated_at"])
                report.retired.append(key)
                audit_record(
                    actor=actor, action="target.retired", object_type="target", object_id=key
                )
        responses: list[tuple[Any, Any]] = list(
            registry_applying.send(
                sender=Target, connections=connection_specs, actor_label=actor_label
            )
        )
        report.others = [r for _, r in responses if isinstance(r, RegistryChanges)]
    return report


def _locked_targets() -> dict[str, Target]:
    """Every target by key, locked, with its current revision."""
    # Lock the registry rows first (no join: PostgreSQL cannot lock an outer join's
    # nullable side), then read the current revisions.
    targets = {t.key: t for t in Target.objects.select_for_update().order_by("key")}
    revisions = TargetRevision.objects.in_bulk(
        [t.current_revision_id for t in targets.values() if t.current_revision_id]
    )
    for target in targets.values():
        target.current_revision = revisions.get(target.current_revision_id)
    return targets


def _target_apply(
    *,
    spec: TargetSpec,
    found: Target | None,
    actor: Actor,
    actor_label: str,
    report: SyncReport,
) -> None:
    """Create or revise one target from its file (reactivating an unchanged retired one)."""
    current = found.current_revision if found else None
    if found is not None and current is not None and current.checksum == spec.checksum:
        if not found.is_active:
            found.is_active = True
            found.save(update_fields=["is_active", "updated_at"])
            report.revised.append(spec.key)
        else:
            report.unchanged.append(spec.key)
        return
    if current is not None:
        _check_version_moves_forward(spec, current)
    target = found if found is not None else Target.objects.create(key=spec.key)
    major, minor = parse_version(spec.contract["version"])
    revision = TargetRevision.objects.create(
        target=target,
        version=spec.contract["version"],
        major=major,
        minor=minor,
        gateway=spec.contract["gateway"],
        contract=spec.contract,
        checksum=spec.checksum,
        source_path=str(spec.path),
        diff=revision_diff(current.contract if current else None, spec.contract, spec.key),
        created_by=actor_label,
    )
    target.current_revision = revision
    target.is_active = True
    target.save(update_fields=["current_revision", "is_active", "updated_at"])
    (report.revised if current else report.created).append(spec.key)
    audit_record(
        actor=actor,
        action="target.revised" if current else "target.created",
        object_type="target",
        object_id=spec.key,
        data={
            "version": revision.version,
            "checksum": revision.checksum,
            "previous_checksum": current.checksum if current else None,
            "source_path": str(spec.path),
        },
    )


@lru_cache(maxsize=256)
def _validator_for(checksum: str, schema_json: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(schema_json))


def payload_errors(contract: dict[str, Any], checksum: str, payload: Any) -> list[dict[str, str]]:
    """RFC 6901 pointer (into ``payload``) + message for every way it breaks the schema."""
    validator = _validator_for(checksum, canonical_json(contract["schema"]))
    errors = []
    for error in sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path)):
        pointer = "".join(
            "/" + str(part).replace("~", "~0").replace("/", "~1") for part in error.absolute_path
        )
        errors.append({"pointer": pointer, "message": _message(error)})  # "" = the payload
    return errors


def _message(error: Any) -> str:
    # jsonschema quotes a pattern with repr(), doubling each backslash, and the JSON body
    # doubles them again: the client read four. The pattern as the schema spells it:
    if error.validator == "pattern":
        return f"{error.instance!r} does not match the pattern {error.validator_value}"
    return str(error.message)
