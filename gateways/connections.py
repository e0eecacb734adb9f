"""Connections: TOML files in ``CONNECTIONS_DIR``, loaded with the targets by ``sync_targets``.

A connection is one configured way out: a provider, its non-secret settings, references
to its secrets, an optional shared rate and a circuit policy. Files are validated here;
``connections_apply`` records each change as a revision with its checksum and a diff,
and an audit event, inside the caller's transaction (``sync_targets`` applies targets
and connections all or nothing).

A target that names no connection uses its channel's built-in default
(``simulator-sms``, ``simulator-push``, ``simulator-http``, ``simulator-email``), built
from ``GATEWAY_*_URL`` when asked for, so today's targets behave as before.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from django.conf import settings

from portal.audit.services import Actor, audit_record

from .base import ConnectionConfig
from .models import Connection, ConnectionRevision
from .providers import PROVIDERS
from .secrets import check_reference

CHANNELS = ("sms", "email", "push", "http", "ops")
# Channels of providers that serve exactly one, so a file may leave ``channel`` out.
PROVIDER_CHANNELS = {
    "twilio": "sms",
    "vonage": "sms",
    "sns": "sms",
    "smtp": "email",
    "ses": "email",
    "fcm": "push",
    "apns": "push",
    "webhook": "http",
    "pagerduty": "ops",
    "slack": "ops",
}
DEFAULT_CONNECTIONS = {
    "sms": "simulator-sms",
    "push": "simulator-push",
    "http": "simulator-http",
    "email": "simulator-email",
}
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,99}$")
TOP_LEVEL_KEYS = {
    "key",
    "provider",
    "channel",
    "rate_per_second",
    "circuit",
    "settings",
    "secrets",
    "description",
}
CIRCUIT_DEFAULTS: dict[str, float | int] = {
    "failure_ratio": 0.5,
    "min_calls": 20,
    "window_s": 60.0,
    "open_s": 30.0,
}
# A setting named like this holds a credential: it belongs under [secrets] as a reference.
SECRET_LOOKING_SETTING = re.compile(r"(password|secret|token|api_key|private_key)", re.I)


class ConnectionFileError(ValueError):
    """A connection file that cannot be loaded; the message names the path and the reason."""


@dataclasses.dataclass(frozen=True, slots=True)
class CircuitPolicy:
    failure_ratio: float
    min_calls: int
    window_s: float
    open_s: float


@dataclasses.dataclass(frozen=True, slots=True)
class ConnectionSpec:
    """One validated connection: what a file says, normalised (``spec`` is checksummed)."""

    spec: dict[str, Any]
    path: Path | None = None  # None for a built-in default

    @property
    def key(self) -> str:
        return str(self.spec["key"])

    @property
    def channel(self) -> str:
        return str(self.spec["channel"])

    @property
    def checksum(self) -> str:
        return spec_checksum(self.spec)

    @property
    def rate_per_second(self) -> float | None:
        rate = self.spec.get("rate_per_second")
        return None if rate is None else float(rate)

    @property
    def circuit(self) -> CircuitPolicy | None:
        """None for the built-in simulator connections: they have no breaker."""
        circuit = self.spec["circuit"]
        return None if circuit is None else CircuitPolicy(**circuit)

    @property
    def config(self) -> ConnectionConfig:
        """What the provider sees: settings and secret references."""
        return ConnectionConfig(
            key=self.key,
            provider=str(self.spec["provider"]),
            channel=self.channel,
            settings=dict(self.spec["settings"]),
            secrets=dict(self.spec["secrets"]),
        )


def canonical_json(data: Any, *, indent: int | None = None) -> str:
    """Registry data (targets and connections) as checksummed and diffed: sorted keys."""
    separators = (",", ": ") if indent else (",", ":")
    return json.dumps(data, sort_keys=True, indent=indent, separators=separators)


def spec_checksum(spec: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(spec).encode()).hexdigest()


def _positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{name} must be a positive number")
    return float(value)


def _circuit(raw: Any) -> dict[str, float | int]:
    if raw is None:
        return dict(CIRCUIT_DEFAULTS)
    if not isinstance(raw, dict):
        raise ValueError("[circuit] must be a table")
    unknown = set(raw) - set(CIRCUIT_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown keys in [circuit]: {', '.join(sorted(unknown))}")
    circuit = {**CIRCUIT_DEFAULTS, **raw}
    ratio = circuit["failure_ratio"]
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio <= 1:
        raise ValueError("circuit.failure_ratio must be above 0 and at most 1")
    min_calls = circuit["min_calls"]
    if isinstance(min_calls, bool) or not isinstance(min_calls, int) or min_calls < 1:
        raise ValueError("circuit.min_calls must be a whole number >= 1")
    return {
        "failure_ratio": float(ratio),
        "min_calls": min_calls,
        "window_s": _positive(circuit["window_s"], "circuit.window_s"),
        "open_s": _positive(circuit["open_s"], "circuit.open_s"),
    }


def validate_connection(raw: dict[str, Any]) -> dict[str, Any]:
    """Check one parsed file and return its normalised spec; ValueError says why.

    No message ever quotes a value from ``[secrets]``: a value put there by mistake
    must not reach a log or a terminal.
    """
    unknown = set(raw) - TOP_LEVEL_KEYS
    if unknown:
        raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
    key = raw.get("key")
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise ValueError("key must be lower-case letters, digits, '.', '_' or '-'")
    provider = raw.get("provider")
    if provider not in PROVIDERS:
        raise ValueError(f"provider must be one of {', '.join(sorted(PROVIDERS))}")
    channel = _channel(raw, provider)
    rate = raw.get("rate_per_second")
    if rate is not None:
        rate = _positive(rate, "rate_per_second")
    provider_settings = _provider_settings(raw.get("settings", {}))
    secrets = _secret_references(raw.get("secrets", {}))
    return {
        "key": key,
        "provider": provider,
        "channel": channel,
        "description": str(raw.get("description", "")),
        "rate_per_second": rate,
        "circuit": _circuit(raw.get("circuit")),
        "settings": provider_settings,
        "secrets": secrets,
    }


def _channel(raw: dict[str, Any], provider: str) -> Any:
    """The file's channel, or the one its provider serves; one of ``CHANNELS``."""
    channel = raw.get("channel", PROVIDER_CHANNELS.get(provider))
    if channel is None:
        raise ValueError(f"channel is required for provider {provider!r}")
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}")
    if provider in PROVIDER_CHANNELS and channel != PROVIDER_CHANNELS[provider]:
        raise ValueError(f"provider {provider!r} serves channel {PROVIDER_CHANNELS[provider]!r}")
    return channel


def _provider_settings(provider_settings: Any) -> dict[str, Any]:
    """``[settings]``, which holds no credential (those are references under ``[secrets]``)."""
    if not isinstance(provider_settings, dict):
        raise ValueError("[settings] must be a table")
    for name in provider_settings:
        if SECRET_LOOKING_SETTING.search(name):
            raise ValueError(
                f"settings.{name} looks like a credential: put a reference under [secrets]"
            )
    return provider_settings


def _secret_references(secrets: Any) -> dict[str, str]:
    """A copy of ``[secrets]``, each value a valid reference (never quoted in an error)."""
    if not isinstance(secrets, dict):
        raise ValueError("[secrets] must be a table of references")
    for name, reference in secrets.items():
        if not isinstance(reference, str):
            raise ValueError(f"secrets.{name} must be a reference string")
        try:
            check_reference(reference)
        except ValueError as exc:
            raise ValueError(f"secrets.{name}: {exc}") from None
    return dict(secrets)


def load_connection_file(path: Path) -> ConnectionSpec | None:
    """The file's spec; None for a file of comments only (a shipped example)."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConnectionFileError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConnectionFileError(f"{path}: not valid TOML: {exc}") from None
    if not raw:
        return None
    try:
        return ConnectionSpec(spec=validate_connection(raw), path=path)
    except ValueError as exc:
        raise ConnectionFileError(f"{path}: {exc}") from None


def load_connections_directory(directory: Path) -> list[ConnectionSpec]:
    """Every connection file in ``directory`` (none when it does not exist), all valid,
    or a ConnectionFileError naming each bad one."""
    if not directory.exists():
        return []
    if not directory.is_dir():
        raise ConnectionFileError(f"{directory}: not a directory")
    specs: list[ConnectionSpec] = []
    problems: list[str] = []
    for path in sorted(directory.glob("*.toml")):
        try:
            spec = load_connection_file(path)
        except ConnectionFileError as exc:
            problems.append(str(exc))
            continue
        if spec is not None:
            specs.append(spec)
    seen: dict[str, Path | None] = {}
    for spec in specs:
        if spec.key in seen:
            problems.append(f"{spec.path}: key {spec.key!r} is also defined in {seen[spec.key]}")
        seen[spec.key] = spec.path
    if problems:
        raise ConnectionFileError("; ".join(problems))
    return specs


def default_connection(channel: str) -> ConnectionSpec:
    """The built-in simulator connection of ``channel``, from today's settings."""
    url = getattr(settings, f"GATEWAY_{channel.upper()}_URL")
    status_url = getattr(settings, f"GATEWAY_{channel.upper()}_STATUS_URL", "")
    spec = {
        "key": DEFAULT_CONNECTIONS[channel],
        "provider": "simulator",
        "channel": channel,
        "description": f"built-in: the {channel} simulator at GATEWAY_{channel.upper()}_URL",
        "rate_per_second": None,
        # No breaker: the simulator's failures are the ones asked for by the recipient, and
        # targets without connections must behave as before connections existed (a demo
        # mix of 503s would otherwise hold back every SMS for open_s).
        "circuit": None,
        # builtin: its receipt_secret is GATEWAY_SIMULATOR_RECEIPT_SECRET (no file to name one)
        "settings": {"url": url, "status_url": status_url, "builtin": True},
        "secrets": {},
    }
    return ConnectionSpec(spec=spec)


def known_channels(specs: Iterable[ConnectionSpec]) -> dict[str, str]:
    """Connection key -> channel for ``specs`` plus the built-in defaults they do not
    replace: what a target may name."""
    channels = {key: channel for channel, key in DEFAULT_CONNECTIONS.items()}
    channels.update({spec.key: spec.channel for spec in specs})
    return channels


@dataclasses.dataclass
class ConnectionSyncReport:
    created: list[str] = dataclasses.field(default_factory=list)
    revised: list[str] = dataclasses.field(default_factory=list)
    unchanged: list[str] = dataclasses.field(default_factory=list)
    retired: list[str] = dataclasses.field(default_factory=list)


def revision_diff(old: dict[str, Any] | None, new: dict[str, Any], key: str) -> str:
    """A unified diff of two revisions of a registry entry, as stored on each revision."""
    old_lines = canonical_json(old, indent=2).splitlines() if old else []
    new_lines = canonical_json(new, indent=2).splitlines()
    return "\n".join(
        difflib.unified_diff(old_lines, new_lines, f"{key} (before)", f"{key} (after)", lineterm="")
    )


def connections_apply(*, specs: list[ConnectionSpec], actor_label: str) -> ConnectionSyncReport:
    """Record what changed against the registry; call inside the sync's transaction."""
    report = ConnectionSyncReport()
    actor = Actor.system(actor_label)
    existing = {c.key: c for c in Connection.objects.select_for_update().order_by("key")}
    revisions = ConnectionRevision.objects.in_bulk(
        [c.current_revision_id for c in existing.values() if c.current_revision_id]
    )
    for spec in specs:
        found = existing.get(spec.key)
        _connection_apply(
            spec=spec,
            found=found,
            current=revisions.get(found.current_revision_id) if found else None,
            actor=actor,
            actor_label=actor_label,
            report=report,
        )
    loaded = {spec.key for spec in specs}
    for key, connection in existing.items():
        if key not in loaded and connection.is_active:
            connection.is_active = False
            connection.save(update_fields=["is_active", "updated_at"])
            report.retired.append(key)
            audit_record(
                actor=actor, action="connection.retired", object_type="connection", object_id=key
            )
    return report


def _connection_apply(
    *,
    spec: ConnectionSpec,
    found: Connection | None,
    current: ConnectionRevision | None,
    actor: Actor,
    actor_label: str,
    report: ConnectionSyncReport,
) -> None:
    """Create or revise one connection from its file (restoring a retired one left
    unchanged)."""
    if found is not None and current is not None and current.checksum == spec.checksum:
        if found.is_active:
            report.unchanged.append(spec.key)
            return
        found.is_active = True
        found.save(update_fields=["is_active", "updated_at"])
        report.revised.append(spec.key)
        audit_record(
            actor=actor,
            action="connection.restored",
            object_type="connection",
            object_id=spec.key,
            data={"checksum": spec.checksum, "source_path": str(spec.path)},
        )
        return
    connection = found if found is not None else Connection.objects.create(key=spec.key)
    revision = ConnectionRevision.objects.create(
        connection=connection,
        provider=spec.spec["provider"],
        channel=spec.channel,
        spec=spec.spec,
        checksum=spec.checksum,
        source_path=str(spec.path),
        diff=revision_diff(current.spec if current else None, spec.spec, spec.key),
        created_by=actor_label,
    )
    connection.current_revision = revision
    connection.is_active = True
    connection.save(update_fields=["current_revision", "is_active", "updated_at"])
    (report.revised if current else report.created).append(spec.key)
    audit_record(
        actor=actor,
        action="connection.revised" if current else "connection.created",
        object_type="connection",
        object_id=spec.key,
        data={
            "provider": revision.provider,
            "channel": revision.channel,
            "checksum": revision.checksum,
            "previous_checksum": current.checksum if current else None,
            "source_path": str(spec.path),
            # Only which secrets it names: the references stay in the revision.
            "secret_names": sorted(spec.spec["secrets"]),
        },
    )


# Connections another app keeps as its own data (a client's webhook endpoints), by key
# prefix: the source gets every wanted key with its prefix and returns the specs of
# those usable now (one query for all of them). Registered at app start-up.
ConnectionSource = Callable[[set[str]], Mapping[str, ConnectionSpec]]
_sources: dict[str, ConnectionSource] = {}


def connection_source_register(*, prefix: str, source: ConnectionSource) -> None:
    """Serve connection keys starting with ``prefix`` (which no file key can hold) from
    ``source``."""
    if KEY_PATTERN.match(prefix):
        raise ValueError(f"prefix {prefix!r} could collide with a connection file's key")
    _sources[prefix] = source


def connection_specs(keys: Iterable[str]) -> dict[str, ConnectionSpec]:
    """The current spec of each key: an active registry row, else a built-in default,
    else what a registered source provides.

    One query for the registry's, one per source asked; a key nobody knows (or a
    source's connection not usable now) is left out.
    """
    wanted = set(keys)
    found: dict[str, ConnectionSpec] = {}
    for prefix, source in _sources.items():
        sourced = {key for key in wanted if key.startswith(prefix)}
        if sourced:
            wanted -= sourced
            found.update(source(sourced))
    if not wanted:
        return found
    rows = Connection.objects.filter(key__in=wanted, is_active=True).select_related(
        "current_revision"
    )
    for row in rows:
        if row.current_revision is not None:
            found[row.key] = ConnectionSpec(
                spec=row.current_revision.spec, path=Path(row.current_revision.source_path)
            )
    for channel, key in DEFAULT_CONNECTIONS.items():
        if key in wanted and key not in found:
            found[key] = default_connection(channel)
    return found


def all_connection_specs() -> list[ConnectionSpec]:
    """Every active connection plus the built-in defaults not overridden, by key."""
    keys = set(Connection.objects.filter(is_active=True).values_list("key", flat=True))
    return sorted(
        connection_specs(keys | set(DEFAULT_CONNECTIONS.values())).values(), key=lambda s: s.key
    )
