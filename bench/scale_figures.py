"""Issue 13's engine figures, run by ``bench/run.py`` after its own: claim cost by tenant
count (``bench/claim_tenants.py``), peers (``bench/peers.py``) and memory
(``bench/memory.py``). Each has a ``--skip-…`` option; ``--quick`` shrinks them.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from bench import claim_tenants, memory, peers

if TYPE_CHECKING:
    from bench.run import Bench


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("issue 13 figures (claim by tenants, peers, memory)")
    group.add_argument("--tenant-claims", type=int, default=50, help="timed claims per case")
    group.add_argument("--skip-claim-tenants", action="store_true")
    group.add_argument(
        "--peer-messages",
        type=int,
        default=20_000,
        help="no-op tasks per peer, and messages of the product on the Redis broker",
    )
    group.add_argument(
        "--redis-url", default=peers.DEFAULT_REDIS_URL, help="a Redis db the bench may flush"
    )
    group.add_argument("--skip-peers", action="store_true")
    group.add_argument("--memory-messages", type=int, default=100_000, help="engine memory run")
    group.add_argument("--memory-api-seconds", type=float, default=60.0, help="API memory run")
    group.add_argument("--skip-memory", action="store_true")
    group.add_argument(
        "--quick",
        action="store_true",
        help="issue 13 figures at a smaller size: 10,000-message memory run, 5,000 per peer",
    )


def run(args: argparse.Namespace, bench: Bench, results: dict) -> None:
    if args.quick:
        args.memory_messages = min(args.memory_messages, 10_000)
        args.peer_messages = min(args.peer_messages, 5_000)
    if not args.skip_claim_tenants:
        print("engine: claim cost, 10 tenants vs 10,000 (100 with due work)...", flush=True)
        r = claim_tenants.measure(bench, claims=args.tenant_claims)
        results["claim_tenants"] = r
        for run_ in r["runs"]:
            if run_["claimed"] != claim_tenants.BATCH:
                results["notes"].append(
                    f"claim over {run_['active_tenants']:,} tenants claimed {run_['claimed']} "
                    f"of {claim_tenants.BATCH}"
                )

    if not args.skip_peers:
        product = (results.get("engine") or {}).get("product")
        r = peers.measure(
            bench, count=args.peer_messages, product=product, redis_url=args.redis_url
        )
        results["peers"] = r
        if product is None:
            results["notes"].append("peers: no product engine figure (--skip-engine) to compare")
        for key in ("django_q_orm", "django_q_redis", "procrastinate"):
            ratio = r[key].get("product_ratio")
            if ratio is not None and ratio <= 1:
                results["notes"].append(f"the product is not ahead of {key} ({ratio:.2f})")

    if not args.skip_memory:
        print(f"memory: engine run, {args.memory_messages:,} messages...", flush=True)
        engine = memory.engine_run(bench, messages=args.memory_messages)
        print(f"memory: API run, {args.memory_api_seconds:g} s...", flush=True)
        api = memory.api_run(bench, seconds=args.memory_api_seconds)
        results["memory"] = {"engine": engine, "api": api}
        for run_ in (engine, api):
            for p in run_["processes"]:
                if not p["flat"]:
                    results["notes"].append(
                        f"memory: {p['process']} grew {p['growth']:+.0%} "
                        f"({p['warm_mib']:.1f} -> {p['last_mib']:.1f} MiB)"
                    )


def render(results: dict) -> list[str]:
    rows: list[tuple[str, str, str, str, str]] = []
    if results.get("claim_tenants"):
        rows += claim_tenants.rows(results["claim_tenants"])
    if results.get("peers"):
        rows += peers.rows(results["peers"])
    if results.get("memory"):
        rows += memory.rows(results["memory"])
    if not rows:
        return []
    return [
        "",
        f"{'issue 13 figures':<34}{'value':>12}{'baseline':>12}{'ratio':>8}{'target':>9}",
        "-" * 75,
        *(f"{a:<34}{b:>12}{c:>12}{d:>8}{e:>9}" for a, b, c, d, e in rows),
    ]
