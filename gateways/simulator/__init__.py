"""The local gateway simulator (CONTRACT.md, "Gateway simulator").

``GatewaySimulator`` holds the rules and the message list; ``SimulatorServer`` serves
them over HTTP; ``start_simulator_in_thread`` runs one in the background for tests::

    server, base_url = start_simulator_in_thread()
    ...  # point GATEWAY_SMS_URL at f"{base_url}/sms"
    server.stop()
"""

from __future__ import annotations

import threading

from .core import GatewaySimulator, SimResponse
from .server import SimulatorServer

__all__ = ["GatewaySimulator", "SimResponse", "SimulatorServer", "start_simulator_in_thread"]


def start_simulator_in_thread(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    latency_ms: float = 0,
    simulator: GatewaySimulator | None = None,
) -> tuple[SimulatorServer, str]:
    """Start a simulator on a daemon thread; port 0 picks a free port.

    Returns the server (``server.simulator`` for its state, ``server.stop()`` to end
    it) and its base URL, e.g. ``http://127.0.0.1:41234``.
    """
    server = SimulatorServer((host, port), simulator=simulator, latency_s=latency_ms / 1000)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},  # how quickly stop() is noticed
        name=f"gateway-simulator-{server.server_address[1]}",
        daemon=True,
    )
    thread.start()
    return server, server.base_url
