"""Who this process is, for lease owners and heartbeats."""

from __future__ import annotations

import os
import socket


def process_worker_id(kind: str) -> str:
    """``kind@host:pid``: the dispatcher's lease owner and every heartbeat row use it, so
    an operator can match a lease to the process that holds it."""
    return f"{kind}@{socket.gethostname()}:{os.getpid()}"
