"""The procrastinate peer of the bench (``bench/peers.py``): an app with one no-op task.

``BENCH_PROCRASTINATE_DSN`` is the bench database; ``python -m bench.peer_procrastinate
defer --count N`` defers N jobs in one ``batch_defer`` and prints the epoch after it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import procrastinate

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo=os.environ.get("BENCH_PROCRASTINATE_DSN", ""))
)


@app.task(name="noop")
def noop() -> None:
    """Nothing at all."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="defer procrastinate no-op jobs")
    sub = parser.add_subparsers(dest="command", required=True)
    defer = sub.add_parser("defer")
    defer.add_argument("--count", type=int, required=True)
    args = parser.parse_args(argv)
    with app.open():
        noop.batch_defer(*({} for _ in range(args.count)))
    print(time.time())
    return 0


if __name__ == "__main__":
    sys.exit(main())
