"""``manage.py demo_traffic``: a mixed workload for ``make run`` (see intents.demo_traffic)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from intents.demo_traffic import (
    DEFAULT_GIVE_UP_AFTER_S,
    INTENTS_PATH,
    MIX,
    Kind,
    TrafficError,
    send_traffic,
)
from portal.cli import positive

REQUEST_TIMEOUT_S = 10.0


class Command(BaseCommand):
    help = (
        "Send a mixed demo workload (accepted, retried, throttled, timed out, rejected) "
        "through the REST API, so the dashboard and dead-letter screens fill up."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the running portal")
        parser.add_argument(
            "--api-key", help="a tenant's API key (default: the demo key seed_demo saved)"
        )
        parser.add_argument(
            "--credentials", type=Path, default=None, help="seed_demo's credentials file"
        )
        parser.add_argument("--rate", type=positive(float), default=2.0, help="intents per second")
        parser.add_argument("--count", type=positive(int), help="stop after this many intents")
        parser.add_argument(
            "--duration",
            type=positive(float),
            help="stop after this many seconds (default 60 without --count; inf: until stopped)",
        )
        parser.add_argument("--seed", type=int, help="random seed of the mix (repeatable runs)")
        parser.add_argument(
            "--give-up-after",
            type=float,
            default=DEFAULT_GIVE_UP_AFTER_S,
            metavar="S",
            help="seconds to keep retrying an unreachable portal (same Idempotency-Key) "
            f"before stopping (default {DEFAULT_GIVE_UP_AFTER_S:g})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        api_key = options["api_key"] or self._demo_key(
            options["credentials"] or settings.DEMO_CREDENTIALS_FILE
        )
        url = options["url"].rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise CommandError(f"--url must be an http(s) URL, not {url!r}")
        count, duration = options["count"], options["duration"]
        if count is None and duration is None:
            duration = 60.0
        if count is not None:
            limit = f"for {count} intents"
        else:
            limit = "until stopped" if math.isinf(duration) else f"for {duration:g} s"
        self.stdout.write(
            f"sending intents to {url}{INTENTS_PATH} at {options['rate']:g}/s {limit} "
            "(Ctrl-C stops)"
        )
        headers = {"Authorization": f"Bearer {api_key}"}
        with httpx.Client(base_url=url, headers=headers, timeout=REQUEST_TIMEOUT_S) as client:
            try:
                summary = send_traffic(
                    client,
                    rate_per_s=options["rate"],
                    count=count,
                    duration_s=duration,
                    seed=options["seed"],
                    on_sent=self._progress if options["verbosity"] > 1 else None,
                    on_retry=self._retrying,
                    give_up_after_s=options["give_up_after"],
                )
            except TrafficError as exc:
                raise CommandError(str(exc)) from None
            except KeyboardInterrupt:
                self.stdout.write("stopped")
                return
        self.stdout.write(f"sent {summary.sent} intents in {summary.seconds:.1f} s")
        for kind in MIX:
            if summary.kinds[kind.name]:
                self.stdout.write(f"  {summary.kinds[kind.name]:>6}  {kind.name}")
        statuses = ", ".join(f"{n} x {code}" for code, n in sorted(summary.statuses.items()))
        self.stdout.write(f"responses: {statuses}")
        self.stdout.write(f"watch them: {url}/admin/operations/ and {url}/admin/deadletters/")

    def _retrying(self, n: int, problem: str, delay_s: float) -> None:
        self.stderr.write(f"intent {n + 1}: {problem}; the same request again in {delay_s:g} s")

    def _progress(self, n: int, kind: Kind, status: int) -> None:
        self.stdout.write(f"{n + 1:>6} {status} {kind.name}")

    @staticmethod
    def _demo_key(path: Path) -> str:
        try:
            key = json.loads(path.read_text())["api_key"]
        except FileNotFoundError:
            raise CommandError(
                f"no {path}: run `manage.py seed_demo` (make run does) or pass --api-key"
            ) from None
        except (ValueError, KeyError, TypeError):
            raise CommandError(f"{path} holds no api_key; pass --api-key") from None
        if not isinstance(key, str) or not key:
            raise CommandError(f"{path} holds no api_key; pass --api-key")
        return key
