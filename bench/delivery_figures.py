"""Issue 12's and 16's figures, run by ``bench/run.py`` last: the engine through real
provider peers (``bench/providers.py``, section ``providers``), the receipts endpoint
(``bench/receipts.py``, section ``receipts``) and the engine with a client webhook
endpoint per tenant (``bench/events.py``, section ``events``). Each has a ``--skip-…``
option.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from bench import events, providers, receipts

if TYPE_CHECKING:
    from bench.run import Bench


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("issue 12 and 16 figures (providers, receipts, events)")
    group.add_argument(
        "--provider-messages", type=int, default=5_000, help="engine messages per path"
    )
    group.add_argument(
        "--provider-latency-ms",
        default=",".join(f"{ms:g}" for ms in providers.DEFAULT_LATENCIES_MS),
        help="peer latencies, comma-separated; each runs the three paths",
    )
    group.add_argument("--skip-providers", action="store_true")
    group.add_argument(
        "--receipt-messages", type=int, default=50_000, help="accepted intents to receipt"
    )
    group.add_argument("--skip-receipts", action="store_true")
    group.add_argument(
        "--events-messages", type=int, default=5_000, help="engine messages per events run"
    )
    group.add_argument("--skip-events", action="store_true")


def run(args: argparse.Namespace, bench: Bench, results: dict) -> None:
    if not args.skip_providers:
        latencies = tuple(float(ms) for ms in args.provider_latency_ms.split(",") if ms.strip())
        r = providers.measure(bench, messages=args.provider_messages, latencies_ms=latencies)
        results["providers"] = r
        for run_ in r["runs"]:
            for path in providers.PATHS:
                one = run_[path]
                if not one["completed"] or one["accepted"] != one["messages"]:
                    results["notes"].append(
                        f"providers {path} at {run_['latency_ms']:g} ms: {one['accepted']:,} "
                        f"of {one['messages']:,} accepted when timed"
                    )
    if not args.skip_receipts:
        floor = (results.get("api") or {}).get("floor")
        r = receipts.measure(bench, messages=args.receipt_messages, floor=floor)
        results["receipts"] = r
        p = r["product"]
        bad = {k: v for k, v in p["statuses"].items() if k != "202"}
        if bad or p["errors"]:
            results["notes"].append(
                f"receipts: non-202 {bad} errors {p['errors']} {p['first_error']}"
            )
        if p["receipts_repeated"]:
            results["notes"].append(
                f"receipts: {p['receipts_repeated']:,} requests repeated a message id "
                "(raise --receipt-messages)"
            )

    if not args.skip_events:
        r = events.measure(bench, messages=args.events_messages)
        results["events"] = r
        results["notes"].extend(events.shortfalls(r))


def render(results: dict) -> list[str]:
    rows: list[tuple[str, str, str, str, str]] = []
    if results.get("providers"):
        rows += providers.rows(results["providers"])
    if results.get("receipts"):
        rows += receipts.rows(results["receipts"])
    if results.get("events"):
        rows += events.rows(results["events"])
    if not rows:
        return []
    return [
        "",
        f"{'issue 12 and 16 figures':<34}{'value':>12}{'baseline':>12}{'ratio':>8}{'target':>9}",
        "-" * 75,
        *(f"{a:<34}{b:>12}{c:>12}{d:>8}{e:>9}" for a, b, c, d, e in rows),
    ]
