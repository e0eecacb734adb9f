"""Issue 13's engine figures, run by ``bench/run.py`` after its own: claim cost by tenant
count (``bench/claim_tenants.py``), peers (``bench/peers.py``) and memory
(``bench/memory.py``). Each has a ``--skip-…`` option; ``--quick`` shrinks them.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from bench import claim_tenants

if TYPE_CHECKING:
    from bench.run import Bench


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("issue 13 figures (claim by tenants, peers, memory)")
    group.add_argument("--tenant-claims", type=int, default=50, help="timed claims per case")
    group.add_argument("--skip-claim-tenants", action="store_true")


def run(args: argparse.Namespace, bench: Bench, results: dict) -> None:
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


def render(results: dict) -> list[str]:
    rows: list[tuple[str, str, str, str, str]] = []
    if results.get("claim_tenants"):
        rows += claim_tenants.rows(results["claim_tenants"])
    if not rows:
        return []
    return [
        "",
        f"{'issue 13 figures':<34}{'value':>12}{'baseline':>12}{'ratio':>8}{'target':>9}",
        "-" * 75,
        *(f"{a:<34}{b:>12}{c:>12}{d:>8}{e:>9}" for a, b, c, d, e in rows),
    ]
