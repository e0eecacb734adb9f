"""``check_connections``: resolve each connection's secrets and probe its provider.

No message is sent: a provider's ``probe`` authenticates and reaches the provider (SMTP
EHLO + AUTH, an account or quota read, a token exchange). A detail line names secret
references, never their values.
"""

from __future__ import annotations

import asyncio
import dataclasses

from .base import RESULT_ERROR_CHARS, ProbeResult
from .connections import ConnectionSpec
from .registry import GatewaySession
from .secrets import SecretUnavailable

PROBE_TIMEOUT_S = 10.0


@dataclasses.dataclass(frozen=True, slots=True)
class CheckResult:
    spec: ConnectionSpec
    probe: ProbeResult


async def _check_one(session: GatewaySession, spec: ConnectionSpec) -> CheckResult:
    config = spec.config
    try:
        for reference in config.secrets.values():
            session.secrets.get(reference)  # a missing secret fails here, naming it
        provider = session.connection(config)
        probe = await provider.probe(timeout_s=PROBE_TIMEOUT_S)
    except SecretUnavailable as exc:
        probe = ProbeResult(False, f"secret unavailable: {exc}")
    except Exception as exc:  # a provider that raises is reported, not fatal to the rest
        probe = ProbeResult(False, f"{type(exc).__name__}: {exc}"[:RESULT_ERROR_CHARS])
    detail = getattr(session.secrets, "scrub", lambda text: text)(probe.detail)
    return CheckResult(spec, ProbeResult(probe.ok, detail))


async def _check_all(specs: list[ConnectionSpec]) -> list[CheckResult]:
    async with GatewaySession() as session:
        return list(await asyncio.gather(*(_check_one(session, spec) for spec in specs)))


def connections_check(*, specs: list[ConnectionSpec]) -> list[CheckResult]:
    """Probe every connection in ``specs`` concurrently; results in the same order."""
    return asyncio.run(_check_all(specs))
