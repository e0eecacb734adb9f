"""`audit_export` (CONTRACT.md): CSV and JSON Lines, --since, --output, and bad input."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError

from portal.audit.models import AuditEvent
from portal.audit.services import Actor, audit_record


def export(*args: str) -> str:
    out = io.StringIO()
    call_command("audit_export", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_jsonl_has_every_event_before_the_export_and_records_the_export(events):
    lines = [json.loads(line) for line in export("--format", "jsonl").splitlines()]
    assert [line["action"] for line in lines] == [f"test.event{i}" for i in range(1, 6)]
    assert lines[0]["data"]["note"] == "ünïcode ok"
    assert all(line["hash"] == event.hash for line, event in zip(lines, events, strict=True))
    # The export itself is an audited action, after the exported range.
    last = AuditEvent.objects.order_by("-sequence").first()
    assert last is not None
    assert last.action == "audit.exported" and last.sequence == 6


def test_csv_has_a_header_and_one_row_per_event_with_formula_cells_defused(events):
    audit_record(
        actor=Actor.system("tests"),
        action="test.formula",
        object_type="thing",
        object_id="=HYPERLINK(1)",
        data={},
    )
    rows = list(csv.DictReader(io.StringIO(export("--format", "csv"))))
    assert len(rows) == 6
    assert rows[0]["action"] == "test.event1" and rows[0]["sequence"] == "1"
    assert json.loads(rows[0]["data"])["nested"] == {"a": [1, 2.5], "b": 2}
    # A spreadsheet must not evaluate a cell an actor could choose.
    assert rows[5]["object_id"] == "'=HYPERLINK(1)"


def test_since_keeps_only_later_events(events):
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    with time_machine.travel(later, tick=False):
        audit_record(actor=Actor.system("tests"), action="test.later", object_type="t", object_id=1)
    since = (later - dt.timedelta(seconds=1)).isoformat()
    lines = [
        json.loads(line) for line in export("--format", "jsonl", "--since", since).splitlines()
    ]
    assert [line["action"] for line in lines] == ["test.later"]


def test_output_file(events, tmp_path):
    target = tmp_path / "audit.jsonl"
    assert export("--format", "jsonl", "--output", str(target)) == ""
    assert len(target.read_text(encoding="utf-8").splitlines()) == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "xml"], "--format must be one of"),
        ([], "--format must be one of"),
        (["--format", "csv", "--since", "yesterday"], "is not an ISO 8601"),
        (["--format", "csv", "--output", "/nonexistent-dir/x.csv"], "cannot write"),
    ],
)
def test_bad_input_is_a_one_line_error_and_records_nothing(events, args, message):
    with pytest.raises(CommandError, match=message) as info:
        export(*args)
    assert "\n" not in str(info.value)
    assert AuditEvent.objects.count() == 5


def test_an_exported_line_carries_exactly_the_hashed_fields_and_its_hash_verifies(events, settings):
    """The export and the chain share one field list: a line's fields other than ``hash``
    are what the HMAC covers, so anyone with the key can check a line on its own."""
    line = json.loads(export("--format", "jsonl").splitlines()[0])
    body = {name: value for name, value in line.items() if name != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    key = (settings.AUDIT_HMAC_KEY or "").encode()
    assert hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest() == line["hash"]
