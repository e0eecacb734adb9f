#!/usr/bin/env python
"""`make run`: start the web server, the workers, the dispatcher and the gateway simulator.

Ctrl-C (or SIGTERM) stops them all. If one of them dies, the others are stopped too
and the exit code says so, so a broken start never looks like a working one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
# PORT and SIMULATOR_PORT move the web server and the gateway simulator (README,
# "Configuration"); the gateway URLs follow the simulator unless set themselves.
WEB_PORT = int(os.environ.get("PORT", "8000"))
SIM_PORT = int(os.environ.get("SIMULATOR_PORT", "8025"))
GATEWAY_PATHS = {"GATEWAY_SMS_URL": "sms", "GATEWAY_PUSH_URL": "push", "GATEWAY_HTTP_URL": "http"}
# A gentle mixed workload (manage.py demo_traffic) so the dashboard has something to
# show; DEMO_TRAFFIC_RATE=0 turns it off.
DEMO_TRAFFIC_RATE = os.environ.get("DEMO_TRAFFIC_RATE", "0.5")
# The simulator signs its delivery receipts with this and the built-in simulator
# connections verify them with it. A public demo value: set your own outside make run.
DEMO_RECEIPT_SECRET = "whsec_ZGVtby1yZWNlaXB0cy1ub3QtYS1yZWFsLXNlY3JldA=="  # noqa: S105


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def main() -> int:
    for port, variable in ((WEB_PORT, "PORT"), (SIM_PORT, "SIMULATOR_PORT")):
        if port_in_use(port):
            print(
                f"error: port {port} on 127.0.0.1 is already in use (another make run?); "
                f"set {variable} to use another, e.g. {variable}={port + 1} make run",
                file=sys.stderr,
            )
            return 2
    metrics_dir = ROOT / "var" / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "portal.settings.dev"),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "PYTHONUNBUFFERED": "1",
        **simulator_gateway_urls(),
    }
    env.setdefault("GATEWAY_SIMULATOR_RECEIPT_SECRET", DEMO_RECEIPT_SECRET)
    subprocess.run([PY, "manage.py", "ensure_schedules"], cwd=ROOT, env=env, check=True)
    gunicorn = str(Path(PY).with_name("gunicorn"))
    commands = {
        "simulator": [
            PY, "manage.py", "run_gateway_simulator", "--port", str(SIM_PORT),
            # signed with GATEWAY_SIMULATOR_RECEIPT_SECRET (the demo's, set above)
            "--receipts-url", f"http://127.0.0.1:{WEB_PORT}/hooks/receipts/{{connection}}",
        ],
        "web": [
            gunicorn, "portal.wsgi", "--bind", f"127.0.0.1:{WEB_PORT}",
            "--workers", "2", "--threads", "4", "--access-logfile", "-",
            # Its default control socket, ~/.gunicorn/gunicorn.ctl, is shared by every
            # gunicorn of the user on the machine; make run does not use it.
            "--no-control-socket",
        ],
        "workers": [PY, "manage.py", "qcluster"],
        "dispatcher": [PY, "manage.py", "run_dispatcher"],
    }  # fmt: skip
    children: dict[str, subprocess.Popen] = {}
    for name, command in commands.items():
        children[name] = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)

    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    for _ in range(100):  # wait up to ~10 s for the web server to listen
        if port_in_use(WEB_PORT) or stopping:
            break
        time.sleep(0.1)
    print_banner()
    demo = start_demo_traffic(env) if not stopping else None
    exit_code = 0
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"error: {name} exited with code {child.returncode}; stopping the rest")
                exit_code, stopping = 1, True
                break
        if demo is not None and demo.poll() is not None:  # optional: the rest keeps running
            print(f"demo traffic stopped (exit code {demo.returncode}); the portal keeps running")
            demo = None
        time.sleep(0.5)
    if demo is not None and demo.poll() is None:
        children["demo traffic"] = demo
    for child in children.values():
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children.values():
        try:
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
    print("all stopped")
    return exit_code


def simulator_gateway_urls() -> dict[str, str]:
    """Gateway URLs on the simulator's port when SIMULATOR_PORT is set, for those not set
    themselves (the settings' defaults, and a .env file, name port 8025)."""
    if "SIMULATOR_PORT" not in os.environ:
        return {}
    return {
        variable: f"http://127.0.0.1:{SIM_PORT}/{path}"
        for variable, path in GATEWAY_PATHS.items()
        if variable not in os.environ
    }


def start_demo_traffic(env: dict[str, str]) -> subprocess.Popen | None:
    try:
        rate = float(DEMO_TRAFFIC_RATE)
    except ValueError:
        print(f"DEMO_TRAFFIC_RATE must be a number, not {DEMO_TRAFFIC_RATE!r}; no demo traffic")
        return None
    if not rate > 0:
        return None
    print(f"demo traffic: {rate:g} intents/s of mixed outcomes (DEMO_TRAFFIC_RATE=0 turns it off)")
    command = [
        PY, "manage.py", "demo_traffic", "--rate", str(rate), "--duration", "inf",
        "--url", f"http://127.0.0.1:{WEB_PORT}",
    ]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)


def print_banner() -> None:
    base = f"http://127.0.0.1:{WEB_PORT}"
    lines = [
        "",
        "Submission Portal is running (Ctrl-C stops everything)",
        f"  operator portal   {base}/admin/",
        f"  API docs          {base}/api/v1/docs",
        f"  API               {base}/api/v1/",
        f"  health            {base}/healthz   {base}/readyz",
        f"  metrics           {base}/metrics",
        f"  gateway simulator http://127.0.0.1:{SIM_PORT}/messages",
    ]
    creds_file = ROOT / "var" / "demo_credentials.json"
    if creds_file.exists():
        creds = json.loads(creds_file.read_text())
        lines += ["", "Demo credentials (also in var/demo_credentials.json):"]
        lines.append(f"  API key (tenant {creds['tenant']}): {creds['api_key']}")
        for user in creds["users"]:
            roles = ",".join(user["roles"])
            lines.append(
                f"  {user['username']:<10} password {user['password']}  roles {roles}"
                f"  TOTP secret {user['totp_secret_base32']}"
            )
        lines += [
            "  current TOTP code: .venv/bin/python manage.py seed_demo --totp-code USERNAME",
            "",
            "Try it:",
            f"  curl -s -X POST {base}/api/v1/intents \\",
            f"    -H 'Authorization: Bearer {creds['api_key']}' \\",
            "    -H 'Idempotency-Key: demo-1' -H 'Content-Type: application/json' \\",
            '    -d \'{"target": "sms.otp", "payload": {"to": "+15550100001", "text": "hi"}}\'',
        ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
