"""Resident memory through long runs (issue 13, item 6), measured by ``bench/run.py``.

A sampler thread in the bench reads ``VmRSS`` of every process of the watched children
(their process groups: gunicorn's master and workers; ``run_dispatcher``; qcluster's
main process, sentinel, pusher, monitor and each worker) once a second, through:

* an engine run of ``--memory-messages`` intents (100,000 by default) with the
  product's dispatcher and cluster;
* an API run of ``--memory-api-seconds`` (60 s) of sustained ``POST /api/v1/intents``.

Per process it prints the sample after warm-up, the last one and their ratio: flat
means the last is within 10 % of the warmed-up one. Warmed up means: for the engine,
after the bench's warm-up batch was delivered (``Bench.warm_up``); for the API, 25 %
into the samples (gunicorn's start and the load generator's warm-up are behind it).
"""

from __future__ import annotations

import copy
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.run import Bench

FLAT_WITHIN = 0.10
WARM_FRACTION = 0.25
INTERVAL_S = 1.0


def _group_processes(pgid: int) -> dict[int, int]:
    """pid -> parent pid of the live processes in process group ``pgid`` (Linux)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            fields = text[text.rindex(")") + 2 :].split()
        except (OSError, ValueError):
            continue
        if int(fields[2]) == pgid:
            found[int(stat.parent.name)] = int(fields[1])
    return found


def _rss_kib(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else None


CLUSTER_WORKERS = 2  # Q_WORKERS of the bench's product engine


def _labels(child: str, leader: int, parents: dict[int, int]) -> dict[int, str]:
    """Names for a child's processes, from the process tree.

    django-q2's ``qcluster`` process starts a sentinel, which forks the workers first,
    then the monitor, then the pusher (``Sentinel.spawn_cluster``); a worker forked
    later (recycled after its task quota, or after a timeout) is named by its pid.
    """
    if child.startswith("gunicorn"):
        return {pid: "web master" if pid == leader else f"web worker {pid}" for pid in parents}
    if child == "dispatcher":
        return dict.fromkeys(parents, "dispatcher")
    labels = {leader: "qcluster main"}
    sentinels = [pid for pid, parent in parents.items() if parent == leader]
    for sentinel in sentinels:
        labels[sentinel] = "cluster sentinel"
        forked = sorted(pid for pid, parent in parents.items() if parent == sentinel)
        names = [f"cluster worker {n + 1}" for n in range(CLUSTER_WORKERS)]
        names += ["cluster monitor", "cluster pusher"]
        for n, pid in enumerate(forked):
            labels[pid] = names[n] if n < len(names) else f"cluster worker {pid}"
    return labels


class Sampler:
    """Samples the children named by ``names()`` until ``stop()``; samples by process."""

    def __init__(self, bench: Bench, names: Callable[[], list[str]]) -> None:
        self.bench = bench
        self.names = names
        self.samples: dict[str, list[tuple[float, int]]] = {}
        self.labels: dict[int, str] = {}  # fixed at first sight: a pid keeps its name
        self.warm_at: float | None = None  # set by mark_warm(); else WARM_FRACTION in
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")
        self._t0 = time.monotonic()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = round(time.monotonic() - self._t0, 1)
            running = dict(self.bench.children.running)
            for child in self.names():
                process = running.get(child)
                if process is None:
                    continue
                parents = _group_processes(process.pid)
                if any(pid not in self.labels for pid in parents):
                    named = _labels(child, process.pid, parents)
                    for pid in parents:
                        self.labels.setdefault(pid, named.get(pid, f"{child} {pid}"))
                for pid in parents:
                    rss = _rss_kib(pid)
                    if rss is not None:
                        self.samples.setdefault(self.labels[pid], []).append((now, rss))
            self._stop.wait(INTERVAL_S)

    def mark_warm(self) -> None:
        """The measured part starts now: the warmed-up sample is the next one."""
        self.warm_at = round(time.monotonic() - self._t0, 1)

    def summary(self) -> list[dict]:
        out = []
        for label, points in sorted(self.samples.items()):
            if self.warm_at is not None:
                measured = [p for p in points if p[0] >= self.warm_at]
            else:
                measured = points[int(len(points) * WARM_FRACTION) :]
            if len(measured) < 3:
                continue
            warm = measured[0][1]
            last = points[-1][1]
            growth = last / warm - 1 if warm else None
            out.append(
                {
                    "process": label,
                    "samples": len(points),
                    "warm_mib": warm / 1024,
                    "last_mib": last / 1024,
                    "max_mib": max(p[1] for p in points) / 1024,
                    "growth": growth,
                    "flat": growth is not None and abs(growth) <= FLAT_WITHIN,
                    "series": points,
                }
            )
        return out


def engine_run(bench: Bench, *, messages: int) -> dict:
    started: list[str] = []

    def start(dbname: str) -> list[str]:
        started.extend(bench.start_product_engine(dbname))
        return started

    with Sampler(bench, lambda: started) as sampler:
        warm_up = bench.warm_up

        def warm_up_then_mark(*args, **kwargs) -> None:
            warm_up(*args, **kwargs)
            sampler.mark_warm()  # imports, connections and a first batch are behind us

        bench.warm_up = warm_up_then_mark  # type: ignore[method-assign]
        try:
            result = bench.engine("enginememory", start, messages=messages)
        finally:
            del bench.warm_up
    return {
        "messages": messages,
        "messages_per_s": result["messages_per_s"],
        "completed": result["completed"],
        "accepted": result["accepted"],
        "processes": sampler.summary(),
    }


def api_run(bench: Bench, *, seconds: float) -> dict:
    saved = bench.args
    bench.args = copy.copy(saved)
    bench.args.duration, bench.args.requests = seconds, 0
    try:
        with Sampler(bench, lambda: ["gunicorn_apimemory"]) as sampler:
            result = bench.api("apimemory", "bench.settings", api_key=bench.api_key)
    finally:
        bench.args = saved
    return {
        "seconds": seconds,
        "requests_per_s": result["requests_per_s"],
        "processes": sampler.summary(),
    }


def rows(result: dict) -> list[tuple[str, str, str, str, str]]:
    """(label, last MiB, warmed-up MiB, last / warm, target) per process of each run."""
    out = []
    for key, title in (("engine", "engine run"), ("api", "API run")):
        run = result.get(key)
        if not run:
            continue
        size = f"{run['messages']:,} msgs" if key == "engine" else f"{run['seconds']:g} s"
        out.append((f"RSS MiB, {title} ({size})", "last", "warm", "ratio", ""))
        for p in run["processes"]:
            out.append(
                (
                    f"  {p['process']}"[:34],
                    f"{p['last_mib']:.1f}",
                    f"{p['warm_mib']:.1f}",
                    f"{p['last_mib'] / p['warm_mib']:.2f}" if p["warm_mib"] else "-",
                    f"<= {1 + FLAT_WITHIN:.2f}",
                )
            )
    return out
