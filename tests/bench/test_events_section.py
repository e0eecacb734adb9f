"""The bench's ``events`` section: its receiver, its table rows, its option, and (with a
PostgreSQL to spare, ``BENCH_DATABASE_URL``) the section itself at a tiny size."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import pytest

from bench import events
from bench.provider_peers import EventReceiver
from bench.run import parse_args

RESULT_KEYS = {
    "messages", "accepted", "terminal", "attempts", "completed", "seconds",
    "messages_per_s", "cpu_ms_per_message", "deliveries", "deliveries_accepted",
    "deliveries_terminal", "peer_cpu_ms_per_delivery",
}  # fmt: skip


def run_result(*, messages: int, per_s: float, deliveries: int) -> dict:
    return {
        "messages": messages,
        "accepted": messages,
        "terminal": messages,
        "attempts": messages,
        "completed": True,
        "seconds": messages / per_s,
        "messages_per_s": per_s,
        "cpu_ms_per_message": 1.5,
        "deliveries": deliveries,
        "deliveries_accepted": deliveries,
        "deliveries_terminal": deliveries,
        "peer_cpu_ms_per_delivery": 0.3 if deliveries else None,
    }


def pair_result(messages: int, *, none_per_s: float, endpoint_per_s: float) -> dict:
    return {
        "none": run_result(messages=messages, per_s=none_per_s, deliveries=0),
        "endpoint": run_result(messages=messages, per_s=endpoint_per_s, deliveries=messages),
        "ratio": endpoint_per_s / none_per_s,
    }


def section_result(messages: int = 100) -> dict:
    return {
        "messages": messages,
        **pair_result(messages, none_per_s=400.0, endpoint_per_s=200.0),
        "http": pair_result(messages, none_per_s=300.0, endpoint_per_s=120.0),
    }


def test_rows_show_both_runs_their_ratio_and_the_target():
    rows = events.rows(section_result())
    label, value, base, ratio, target = rows[0]
    assert (value, base, ratio, target) == ("200.0", "400.0", "0.50", ">= 0.45")
    assert "endpoint" in label
    assert rows[1][1] == "400.0"  # 100 intents + 100 events in 0.5 s
    assert all(len(row) == 5 for row in rows)


def test_rows_show_the_http_gateway_pair_after_the_in_process_one():
    rows = events.rows(section_result())
    assert "in-process gateway" in rows[0][0]
    [http] = [row for row in rows if "HTTP gateway" in row[0]]
    assert http[1:] == ("120.0", "300.0", "0.40", ">= 0.45")
    assert len(rows) == 10


def test_a_complete_result_leaves_no_note_and_a_missing_delivery_one():
    result = section_result()
    assert events.shortfalls(result) == []
    result["endpoint"]["deliveries_accepted"] = 99
    (note,) = events.shortfalls(result)
    assert note.startswith("events endpoint: 100 of 100 accepted, 99 of 100 deliveries")
    result["endpoint"]["deliveries_accepted"] = 100
    result["http"]["none"]["accepted"] = 98
    (note,) = events.shortfalls(result)
    assert note.startswith("events http none: 98 of 100 accepted")


def test_only_events_skips_every_other_section():
    args = parse_args(["--only", "events", "--events-messages", "50"])
    assert not args.skip_events and args.events_messages == 50
    assert args.skip_engine and args.skip_providers and args.skip_receipts


async def _exchange(chunks: list[bytes], *, answers: int) -> bytes:
    server = await asyncio.get_running_loop().create_server(EventReceiver, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        got = b""
        while got.count(b"HTTP/1.1 200 OK") < answers or not got.endswith(b"}"):
            got += await asyncio.wait_for(reader.read(4096), timeout=5)
        writer.close()
    return got


def test_the_receiver_answers_each_keep_alive_request_once_its_body_is_in():
    body = b'{"type":"intent.accepted"}'
    request = b"POST /hooks HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    # The first request's body arrives in two pieces; the second is pipelined behind it.
    chunks = [request + body[:5], body[5:] + request + body]
    got = asyncio.run(_exchange(chunks, answers=2))
    assert got.count(b"HTTP/1.1 200 OK") == 2
    assert got.count(b'{"id":"event-') == 2


@pytest.mark.skipif(
    not os.environ.get("BENCH_DATABASE_URL"),
    reason="runs real processes for ~4 minutes; set BENCH_DATABASE_URL=postgres://… to run",
)
def test_the_section_runs_at_a_tiny_size_and_returns_its_figures():
    from bench.pg import Server
    from bench.run import Bench

    args = parse_args(["--database-url", os.environ["BENCH_DATABASE_URL"], "--only", "events"])
    server = Server(args.database_url)
    server.check()
    with tempfile.TemporaryDirectory(prefix="bench_") as tmp:
        bench = Bench(args, server, Path(tmp))
        try:
            bench.prepare_template()
            result = events.measure(bench, messages=20)
        finally:
            bench.children.stop_all()
            bench.drop_databases()
    assert {"messages", "none", "endpoint", "ratio", "http"} <= set(result)
    for pair in (result, result["http"]):
        for name in ("none", "endpoint"):
            assert set(pair[name]) >= RESULT_KEYS
        assert pair["endpoint"]["deliveries_accepted"] == 20
        assert pair["none"]["deliveries"] == 0
        assert pair["ratio"] > 0
    assert events.shortfalls(result) == []
    assert result["ratio"] > 0
