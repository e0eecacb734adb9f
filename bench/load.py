"""The API load generator, run as its own process: ``python -m bench.load --url ...``.

Each thread keeps one HTTP/1.1 keep-alive connection (``http.client``, the lightest
pure-Python client, so the generator takes as little CPU as it can from the server it
measures) and posts one new intent per request with a fresh Idempotency-Key. Requests
started during the warm-up are not counted. Prints one JSON object on stdout.

``--receipts-secret whsec_…``: each request is instead a delivery receipt for the next
of ``--receipt-messages`` accepted messages (``message_id`` ``<prefix><n>``, n from 1),
signed as Standard Webhooks says (the simulator's own signing: ``webhook-id``,
``webhook-timestamp``, ``webhook-signature`` over ``id.timestamp.body``). Past the last
message the ids start again (duplicates, counted in ``receipts_repeated``).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import http.client
import itertools
import json
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from urllib.parse import urlsplit


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


class Load:
    def __init__(self, args: argparse.Namespace) -> None:
        parts = urlsplit(args.url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.path = parts.path or "/"
        self.api_key = args.api_key
        self.concurrency = args.concurrency
        self.warmup_s = args.warmup
        self.duration_s = args.duration
        self.max_requests = args.requests
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.first_error = ""
        self.stop = threading.Event()
        self.measure_from = 0.0
        self.measure_until = 0.0
        self.last_done = 0.0
        self.answered = 0  # warm-up included
        secret = args.receipts_secret.removeprefix("whsec_")
        self.receipt_key = base64.b64decode(secret) if secret else b""
        self.receipt_messages = args.receipt_messages
        self.receipt_prefix = args.receipt_prefix
        self.receipt_numbers = itertools.count(0)  # next() is atomic under the GIL

    def request(self, n: int) -> tuple[bytes, dict[str, str]]:
        if self.receipt_key:
            return self.receipt()
        payload = {"to": f"+1555{n % 10_000_000:07d}", "text": "bench message"}
        body = json.dumps({"target": "sms.otp", "payload": payload}).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return body, headers

    def receipt(self) -> tuple[bytes, dict[str, str]]:
        number = next(self.receipt_numbers) % self.receipt_messages + 1
        now = dt.datetime.now(dt.UTC)
        body = json.dumps(
            {
                "message_id": f"{self.receipt_prefix}{number}",
                "occurred_at": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "status": "delivered",
            }
        ).encode()
        msg_id, timestamp = f"msg_{uuid.uuid4().hex}", int(now.timestamp())
        signed = f"{msg_id}.{timestamp}.".encode() + body
        digest = hmac.new(self.receipt_key, signed, hashlib.sha256).digest()
        headers = {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": f"v1,{base64.b64encode(digest).decode()}",
        }
        return body, headers

    def worker(self, index: int) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        n = index * 1_000_000_000
        while not self.stop.is_set():
            n += 1
            body, headers = self.request(n)
            started = time.perf_counter()
            try:
                conn.request("POST", self.path, body=body, headers=headers)
                response = conn.getresponse()
                text = response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                with self.lock:
                    self.errors[type(exc).__name__] += 1
                continue
            done = time.perf_counter()
            with self.lock:
                self.answered += 1
            if started < self.measure_from:
                continue
            with self.lock:
                self.statuses[status] += 1
                if status in (200, 201, 202):
                    self.latencies.append(done - started)
                    self.last_done = max(self.last_done, done)
                elif not self.first_error:
                    self.first_error = f"{status}: {text[:300].decode(errors='replace')}"
                if self.max_requests and len(self.latencies) >= self.max_requests:
                    self.stop.set()
        conn.close()

    def run(self) -> dict:
        start = time.perf_counter()
        self.measure_from = start + self.warmup_s
        threads = [
            threading.Thread(target=self.worker, args=(i,), daemon=True)
            for i in range(self.concurrency)
        ]
        for thread in threads:
            thread.start()
        self.stop.wait(self.warmup_s + self.duration_s)
        self.measure_until = time.perf_counter()
        self.stop.set()
        for thread in threads:
            thread.join(timeout=35)
        # A request cap ends the window at its last answer, not at the deadline.
        capped = self.max_requests and len(self.latencies) >= self.max_requests
        end = self.last_done if capped else self.measure_until
        window = max(end - self.measure_from, 1e-9)
        values = sorted(self.latencies)
        return {
            "requests": len(values),
            "requests_total": self.answered,
            "window_s": round(window, 3),
            "requests_per_s": len(values) / window,
            "p50_ms": percentile(values, 0.50) * 1000,
            "p99_ms": percentile(values, 0.99) * 1000,
            "mean_ms": (statistics.fmean(values) * 1000) if values else float("nan"),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(self.errors),
            "first_error": self.first_error,
            "concurrency": self.concurrency,
            "receipts_repeated": (
                max(0, next(self.receipt_numbers) - 1 - self.receipt_messages)
                if self.receipt_key
                else 0
            ),
            # The generator shares the CPUs with the server it measures: its own cost.
            "client_cpu_s": round(time.process_time(), 2),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--api-key", default="")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--requests", type=int, default=0, help="stop after this many (0: none)")
    parser.add_argument("--receipts-secret", default="", help="post signed receipts instead")
    parser.add_argument("--receipt-messages", type=int, default=1)
    parser.add_argument("--receipt-prefix", default="sim-")
    args = parser.parse_args(argv)
    json.dump(Load(args).run(), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
