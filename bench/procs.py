"""Child processes of the benchmark: each in its own session, all stopped on exit.

Every child gets a new session (process group), so stopping it also stops what it
forked (gunicorn's workers, django-q2's sentinel and workers), and a Ctrl-C in the
terminal reaches only ``bench/run.py``, which then stops them in order.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .pg import BenchError

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


class Children:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = (self.log_dir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.running[name] = process
        return process

    def check_alive(self, *names: str) -> None:
        for name in names:
            process = self.running[name]
            if process.poll() is not None:
                raise BenchError(
                    f"{name} exited with code {process.returncode}: {self.log_tail(name)}"
                )

    def log_tail(self, name: str, chars: int = 600) -> str:
        path = self.log_dir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return " ".join(text[-chars:].split()) or "(no output)"

    def stop(self, *names: str, timeout: float = 20.0) -> dict[str, int | None]:
        """SIGTERM each group, wait, then SIGKILL what is left; returns the exit codes."""
        names = names or tuple(self.running)
        targets = {n: self.running.pop(n) for n in names if n in self.running}
        for process in targets.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes: dict[str, int | None] = {}
        for name, process in targets.items():
            try:
                codes[name] = process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                codes[name] = process.wait(timeout=10)
            # Whatever the leader left behind in its group (forked workers) goes too.
            _signal_group(process, signal.SIGKILL)
        return codes

    def stop_all(self) -> None:
        self.stop()

    def cpu_seconds(self, *names: str) -> float:
        return sum(group_cpu_seconds(self.running[name].pid) for name in names)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def run_checked(argv: list[str], env: dict[str, str], *, what: str) -> str:
    done = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if done.returncode:
        tail = " ".join((done.stderr or done.stdout)[-800:].split())
        raise BenchError(f"{what} failed (exit {done.returncode}): {tail}")
    return done.stdout


def wait_until(
    condition: Callable[[], object], *, timeout: float, what: str, interval: float = 0.1
) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the live processes in process group ``pgid`` (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended meanwhile
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / ticks
