"""Issue 12's figure: the engine through real provider peers next to the simulator path.

Run by ``bench/run.py`` (section ``providers``). For each peer latency of
``--provider-latency-ms`` (default 0 and 5 ms), three engine runs, each exactly as the
engine section's product run (``run_dispatcher`` + ``qcluster``, 2 workers, 300 warm-up
intents, ``--provider-messages`` released at once, timed to the last ``finished_at``):

- **simulator**: target ``http.webhook`` on the built-in ``simulator-http`` connection,
  the product's own HTTP adapter, to the gateway simulator in its own process
  (``manage.py run_gateway_simulator --latency-ms L``);
- **smtp**: target ``bench.email`` on connection ``bench-smtp`` (provider ``smtp``,
  no TLS) to an aiosmtpd server in its own process (``bench/provider_peers.py``; ``250``
  after ``L`` ms on ``DATA``);
- **webhook**: target ``bench.webhook`` on connection ``bench-webhook`` (provider
  ``webhook``, Standard Webhooks-signed with a ``whsec_`` secret read from an ``env:``
  reference) to a receiver on the simulator's own threaded server that verifies nothing
  and answers 200 after ``L`` ms.

The figure is each provider's msg/s over the simulator's at the same latency; target
≥ 0.8 (the provider layer costs at most 20 %). Each peer's CPU per message is printed
too: on a 2-core machine the peer shares the CPUs with the engine it serves.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from bench.procs import PY, ROOT, run_checked, wait_until

if TYPE_CHECKING:
    from bench.run import Bench

PROVIDER_TARGET_RATIO = 0.8
DEFAULT_LATENCIES_MS = (0.0, 5.0)
# A fixed test secret (the Standard Webhooks specification's example format).
WEBHOOK_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
HTTP_PAYLOAD = """'{"event":"bench","to":"bench"}'"""
EMAIL_PAYLOAD = (
    """'{"subject":"bench","text":"bench message","to":"user' || g || '@bench.example"}'"""
)
PATHS = {
    # name: (target, payload)
    "simulator": ("http.webhook", HTTP_PAYLOAD),
    "smtp": ("bench.email", EMAIL_PAYLOAD),
    "webhook": ("bench.webhook", HTTP_PAYLOAD),
}
TARGET_TAIL = """
attempt_timeout_s = 10
acceptance_deadline_s = 86400
[retry]
strategy = "exponential_jitter"
initial_delay_s = 5
multiplier = 3.0
max_delay_s = 3600
max_attempts = 12
[schema]
type = "object"
"""


def write_registry(directory: Path, ports: dict[str, int]) -> tuple[Path, Path]:
    """The shipped targets plus the two bench targets, and their two connections."""
    targets = directory / "targets"
    shutil.copytree(ROOT / "conf" / "targets", targets, dirs_exist_ok=True)
    connections = directory / "connections"
    connections.mkdir(exist_ok=True)
    (connections / "bench_smtp.toml").write_text(
        'key = "bench-smtp"\nprovider = "smtp"\n[settings]\nhost = "127.0.0.1"\n'
        f'port = {ports["smtp"]}\nsecurity = "none"\nfrom = "Bench <bench@bench.example>"\n'
    )
    (connections / "bench_webhook.toml").write_text(
        'key = "bench-webhook"\nprovider = "webhook"\n[settings]\n'
        f'url = "http://127.0.0.1:{ports["webhook"]}/in"\n'
        '[secrets]\nsigning_secret = "env:BENCH_WEBHOOK_SECRET"\n'
    )
    for key, gateway, connection, required in (
        ("bench.email", "email", "bench-smtp", '["to", "subject", "text"]'),
        ("bench.webhook", "http", "bench-webhook", '["to", "event"]'),
    ):
        (targets / f"{key.replace('.', '_')}.toml").write_text(
            f'key = "{key}"\nversion = "1.0"\ngateway = "{gateway}"\n'
            f'connections = ["{connection}"]\n{TARGET_TAIL}required = {required}\n'
        )
    return targets, connections


def measure(bench: Bench, *, messages: int, latencies_ms: tuple[float, ...]) -> dict:
    from bench.run import free_port, http_answers

    ports = {"simulator": free_port(), "smtp": free_port(), "webhook": free_port()}
    targets, connections = write_registry(bench.work_dir / "providers", ports)
    template = bench.database("providerstpl", template=bench.template)
    run_checked(
        [PY, "manage.py", "sync_targets", "--dir", str(targets), "--connections-dir",
         str(connections)],
        bench.env(template),
        what="sync_targets (providers)",
    )  # fmt: skip
    engine_env = {
        "BENCH_GATEWAY_ADAPTERS": "product",
        "GATEWAY_HTTP_URL": f"http://127.0.0.1:{ports['simulator']}/http",
        "BENCH_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    out: dict = {"messages": messages, "runs": []}
    for latency_ms in latencies_ms:
        peers = {
            "simulator": [PY, "manage.py", "run_gateway_simulator", "--port",
                          str(ports["simulator"]), "--latency-ms", f"{latency_ms:g}"],
            "smtp": [PY, "-m", "bench.provider_peers", "smtp", "--port", str(ports["smtp"]),
                     "--latency-ms", f"{latency_ms:g}"],
            "webhook": [PY, "-m", "bench.provider_peers", "webhook", "--port",
                        str(ports["webhook"]), "--latency-ms", f"{latency_ms:g}"],
        }  # fmt: skip
        names = {path: f"peer_{path}" for path in peers}
        for path, argv in peers.items():
            bench.children.start(names[path], argv, bench.env(template))
        try:
            for path in peers:
                port = ports[path]

                def listening(path: str = path, port: int = port, name: str = names[path]) -> bool:
                    bench.children.check_alive(name)
                    return _listens(port) if path == "smtp" else http_answers(port)

                wait_until(listening, timeout=60, what=f"the {path} peer")
            run: dict = {"latency_ms": latency_ms}
            for path, (target, payload) in PATHS.items():
                print(
                    f"providers: {path} at {latency_ms:g} ms peer latency, {messages:,} messages...",
                    flush=True,
                )
                peer_cpu = bench.children.cpu_seconds(names[path])
                result = bench.engine(
                    f"prov{path}",
                    lambda db: bench.start_product_engine(db, **engine_env),
                    messages=messages,
                    template=template,
                    target=target,
                    payload=payload,
                )
                peer_cpu = bench.children.cpu_seconds(names[path]) - peer_cpu
                # warm-up included: the peer served those too
                served = result["terminal"] + 300
                result["peer_cpu_ms_per_message"] = peer_cpu * 1000 / served
                result.pop("open_intents_over_time", None)
                run[path] = result
            base = run["simulator"]["messages_per_s"]
            for path in ("smtp", "webhook"):
                run[path]["ratio"] = run[path]["messages_per_s"] / base if base else None
            out["runs"].append(run)
        finally:
            bench.children.stop(*names.values())
    return out


def _listens(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            return sock.recv(4).startswith(b"220")
    except OSError:
        return False


def rows(result: dict) -> list[tuple[str, str, str, str, str]]:
    from bench.run import fmt

    out = []
    for run in result["runs"]:
        ms = f"{run['latency_ms']:g} ms"
        sim = run["simulator"]
        out.append((f"simulator path, {ms} (msg/s)", fmt(sim["messages_per_s"]), "", "", ""))
        for path in ("smtp", "webhook"):
            r = run[path]
            out.append(
                (
                    f"{path} provider, {ms} (msg/s)",
                    fmt(r["messages_per_s"]),
                    fmt(sim["messages_per_s"]),
                    fmt(r["ratio"], 2),
                    f">= {PROVIDER_TARGET_RATIO}",
                )
            )
        out.append(
            (
                "  engine CPU ms/msg sim/smtp/hook",
                "/".join(fmt(run[p]["cpu_ms_per_message"], 2) for p in PATHS),
                "",
                "",
                "",
            )
        )
        out.append(
            (
                "  peer CPU ms/msg sim/smtp/hook",
                "/".join(fmt(run[p]["peer_cpu_ms_per_message"], 2) for p in PATHS),
                "",
                "",
                "",
            )
        )
    return out
