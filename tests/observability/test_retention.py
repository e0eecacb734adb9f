"""purge_retention: what is past retention goes (rows and evidence files), what is open,
recent or audit history stays; --dry-run only counts."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from deadletters.models import DeadLetter, Evidence, ReplayItem
from intents.models import Attempt, Intent
from portal.audit.models import AuditEvent
from portal.audit.services import Actor, audit_record
from portal.observability.models import WorkerHeartbeat
from portal.observability.services import heartbeat


@pytest.fixture
def media(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    settings.RETENTION_INTENT_DAYS = 30
    return tmp_path


def finished(rows, status, days, *, attempts=1, reason="gateway_accepted"):
    intent = rows.intent(
        status=status,
        created_at=rows.ago(days=days, minutes=5),
        finished_at=rows.ago(days=days),
        attempts_count=attempts,
        reason_code=reason,
    )
    for _ in range(attempts):
        rows.attempt(intent, outcome="rejected_transient", finished_at=rows.ago(days=days))
    return intent


@pytest.fixture
def world(rows, media):
    """Rows on both sides of every retention line; names say which side."""
    past = rows.ago(days=1)
    w: dict = {}
    w["old_accepted"] = finished(rows, "accepted", 40, attempts=2)
    w["old_cancelled"] = finished(rows, "cancelled", 31, attempts=0, reason="cancelled_by_client")
    w["recent_accepted"] = finished(rows, "accepted", 10)
    w["old_pending"] = rows.intent(created_at=rows.ago(days=100), next_attempt_at=rows.now)
    w["old_in_flight"] = rows.intent(
        status="in_flight", created_at=rows.ago(days=100), lease_expires_at=rows.now
    )

    w["resolved"] = finished(rows, "exhausted", 100, attempts=3, reason="attempts_exhausted")
    dl = rows.dead_letter(w["resolved"], status="resolved", retention_until=past)
    w["resolved_file"] = rows.evidence(dl, file_name="ticket-resolved.txt").file.name
    rows.evidence(dl)  # a note
    w["discarded"] = finished(rows, "failed", 95, reason="gateway_rejected")
    dl = rows.dead_letter(w["discarded"], status="discarded", retention_until=past)
    w["discarded_file"] = rows.evidence(dl, file_name="ticket-discarded.txt").file.name
    w["replayed_done"] = finished(rows, "expired", 95, reason="deadline_passed")
    dl = rows.dead_letter(w["replayed_done"], status="replayed", retention_until=past)
    rows.replay([dl], status="done")  # a finished replay does not hold it

    w["open"] = finished(rows, "exhausted", 100, attempts=3, reason="attempts_exhausted")
    dl = rows.dead_letter(w["open"], status="open", retention_until=past)
    w["open_file"] = rows.evidence(dl, file_name="ticket-open.txt").file.name
    w["resolved_recently"] = finished(rows, "expired", 40, reason="deadline_passed")
    rows.dead_letter(
        w["resolved_recently"], status="resolved", retention_until=rows.now + dt.timedelta(days=50)
    )
    w["held_by_replay"] = finished(rows, "failed", 100, reason="gateway_rejected")
    dl = rows.dead_letter(w["held_by_replay"], status="resolved", retention_until=past)
    rows.replay([dl], status="pending")  # an undecided replay names it

    heartbeat(worker_id="worker@gone:1", kind="worker", now=rows.ago(days=8))
    heartbeat(worker_id="worker@alive:2", kind="worker", now=rows.ago(seconds=5))
    audit_record(actor=Actor.system("tests"), action="tests.before_purge", data={"n": 1})
    return w


PURGED = ("old_accepted", "old_cancelled", "resolved", "discarded", "replayed_done")
KEPT = (
    "recent_accepted",
    "old_pending",
    "old_in_flight",
    "open",
    "resolved_recently",
    "held_by_replay",
)
EXPECTED = {
    "dead_letters": 3,
    "evidence": 3,
    "evidence_files": 2,
    "replay_items": 1,
    "intents": 5,
    "attempts": 2 + 0 + 3 + 1 + 1,
    "heartbeats": 1,
}


def table_counts() -> dict[str, int]:
    return {
        "intents": Intent.objects.count(),
        "attempts": Attempt.objects.count(),
        "dead_letters": DeadLetter.objects.count(),
        "evidence": Evidence.objects.count(),
        "replay_items": ReplayItem.objects.count(),
        "heartbeats": WorkerHeartbeat.objects.count(),
        "audit": AuditEvent.objects.count(),
    }


def report_lines(out: str) -> dict[str, int]:
    counts = {}
    for line in out.splitlines():
        if line.startswith(("would purge ", "purged ")):
            rest = line.removeprefix("would ").removeprefix("purge ").removeprefix("purged ")
            kind, _, n = rest.partition(": ")
            counts[kind] = int(n)
    return counts


def run(*args: str) -> str:
    out = StringIO()
    call_command("purge_retention", *args, stdout=out)
    return out.getvalue()


def test_dry_run_counts_and_changes_nothing(world, media):
    before = table_counts()
    out = run("--dry-run")
    assert report_lines(out) == EXPECTED
    assert "would purge intents: 5" in out
    assert "intents finished before 2025-12-06T12:00:00+00:00 are past retention" in out
    assert table_counts() == before
    for name in ("resolved_file", "discarded_file", "open_file"):
        assert (media / world[name]).exists()


@pytest.mark.django_db(transaction=True)
def test_real_run_purges_exactly_what_is_past_retention(world, media):
    audit_before = list(AuditEvent.objects.values_list("sequence", "hash"))
    before = table_counts()
    out = run()
    assert report_lines(out) == EXPECTED
    after = table_counts()
    for kind, n in EXPECTED.items():
        if kind != "evidence_files":
            assert before[kind] - after[kind] == n, kind

    for name in PURGED:
        assert not Intent.objects.filter(pk=world[name].pk).exists(), name
        assert not Attempt.objects.filter(intent_id=world[name].pk).exists(), name
    for name in KEPT:
        intent = Intent.objects.get(pk=world[name].pk)
        assert Attempt.objects.filter(intent=intent).count() == intent.attempts_count, name
    assert list(DeadLetter.objects.order_by("status").values_list("status", flat=True)) == [
        "open",
        "resolved",
        "resolved",
    ]
    assert Evidence.objects.get().file.name == world["open_file"]
    assert not (media / world["resolved_file"]).exists()
    assert not (media / world["discarded_file"]).exists()
    assert (media / world["open_file"]).exists()
    assert list(WorkerHeartbeat.objects.values_list("worker_id", flat=True)) == ["worker@alive:2"]

    # The audit history is never purged: every earlier event is intact, one is added.
    assert list(AuditEvent.objects.values_list("sequence", "hash"))[:-1] == audit_before
    purge_event = AuditEvent.objects.last()
    assert purge_event is not None
    assert purge_event.action == "retention.purged"
    assert purge_event.data["intents"] == 5
    verify = StringIO()
    call_command("audit_verify", stdout=verify)  # exits non-zero on a broken chain

    # Nothing left to do: a second run purges nothing and records nothing.
    assert set(report_lines(run()).values()) == {0}
    assert AuditEvent.objects.count() == after["audit"]


def test_bounded_batches_stop_and_a_later_run_finishes(world, media, settings):
    out = run("--batch-size", "1", "--max-batches", "2")
    assert "stopped at --max-batches; more remains past retention" in out
    partial = report_lines(out)
    assert partial["dead_letters"] + partial["intents"] == 2
    run()
    assert set(report_lines(run("--dry-run")).values()) == {0}
    assert Intent.objects.count() == len(KEPT)


def test_idempotency_keys_live_as_long_as_their_intents(tenant, targets, frozen_clock, settings):
    from intents.errors import IdempotencyKeyReused
    from intents.services import intent_submit

    settings.RETENTION_INTENT_DAYS = 30

    def submit(key, text):
        return intent_submit(
            tenant=tenant,
            idempotency_key=key,
            target_key="sms.fast",
            contract_version=None,
            payload={"to": "+15550100001", "text": text},
        )

    old = submit("order-1", "first").intent
    live = submit("order-2", "first").intent
    Intent.objects.filter(pk=old.pk).update(
        status="accepted", finished_at=frozen_clock.now - dt.timedelta(days=31)
    )
    Intent.objects.filter(pk=live.pk).update(
        status="accepted", finished_at=frozen_clock.now - dt.timedelta(days=29)
    )
    # Before the purge, both keys are taken.
    for key in ("order-1", "order-2"):
        with pytest.raises(IdempotencyKeyReused):
            submit(key, "second")
    run()
    assert not Intent.objects.filter(pk=old.pk).exists()
    reused = submit("order-1", "second")
    assert reused.created is True
    assert reused.intent.pk != old.pk
    with pytest.raises(IdempotencyKeyReused):
        submit("order-2", "second")
    assert submit("order-2", "first").created is False  # still answered as a replay
