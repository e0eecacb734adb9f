"""Read queries about connections: their specs and health, for the admin and metrics."""

from __future__ import annotations

import dataclasses

from .circuit import STATE_VALUES
from .connections import DEFAULT_CONNECTIONS, ConnectionSpec, all_connection_specs
from .models import CircuitState, Connection, ConnectionHealth


@dataclasses.dataclass(frozen=True, slots=True)
class ConnectionStatus:
    spec: ConnectionSpec
    health: ConnectionHealth | None

    @property
    def state(self) -> str:
        return self.health.state if self.health is not None else CircuitState.CLOSED


def connection_statuses() -> list[ConnectionStatus]:
    """Every active connection (built-in ones included) with its health row, if any."""
    specs = all_connection_specs()
    health = {
        row.connection_key: row
        for row in ConnectionHealth.objects.filter(connection_key__in=[s.key for s in specs])
    }
    return [ConnectionStatus(spec, health.get(spec.key)) for spec in specs]


def circuit_state_values() -> dict[str, int]:
    """Connection key -> 0 closed, 1 half-open, 2 open, for every active connection and
    the built-in defaults: two queries."""
    keys = set(DEFAULT_CONNECTIONS.values())
    keys |= set(Connection.objects.filter(is_active=True).values_list("key", flat=True))
    values = dict.fromkeys(keys, STATE_VALUES[CircuitState.CLOSED])
    for key, state in ConnectionHealth.objects.filter(connection_key__in=keys).values_list(
        "connection_key", "state"
    ):
        values[key] = STATE_VALUES[CircuitState(state)]
    return values
