"""Finding 4: cutting the newest events is detected even when the head row is rewritten
to the new last event: the head carries an HMAC signature only the key holder can make,
and a checkpoint kept outside the database (``--expect-at-least``, the gauge) catches a
cut by someone who holds the key."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portal.audit.models import AuditChainHead, AuditEvent
from portal.observability.exposition import render_latest

pytestmark = pytest.mark.django_db


def _verify(*args):
    try:
        call_command("audit_verify", *args)
    except CommandError as exc:
        return exc.returncode, str(exc)
    return 0, ""


def _cut_tail_and_rewrite_head(raw_sql, keep: int) -> None:
    new_last = AuditEvent.objects.get(sequence=keep)
    raw_sql("DELETE FROM audit_auditevent WHERE sequence > %s", [keep])
    raw_sql(
        "UPDATE audit_auditchainhead SET sequence = %s, last_hash = %s WHERE id = 1",
        [keep, new_last.hash],
    )


def test_the_head_is_signed(events):
    head = AuditChainHead.objects.get()
    assert len(head.signature) == 64
    assert _verify() == (0, "")


def test_a_cut_tail_with_a_rewritten_head_is_found(events, raw_sql):
    _cut_tail_and_rewrite_head(raw_sql, keep=2)

    code, message = _verify()

    assert code == 1
    assert "head signature mismatch" in message and "event #2" in message


def test_a_head_signature_copied_from_an_older_head_is_found(events, raw_sql):
    old_signature = AuditChainHead.objects.get().signature
    from portal.audit.services import Actor, audit_record

    audit_record(actor=Actor.system("tests"), action="test.more")
    raw_sql("DELETE FROM audit_auditevent WHERE sequence = 6")
    raw_sql(
        "UPDATE audit_auditchainhead SET sequence = 5, last_hash = %s, signature = %s",
        [events[-1].hash, old_signature],
    )
    # The very same state as before event 6: only a checkpoint outside the database shows it.
    assert _verify() == (0, "")
    code, message = _verify("--expect-at-least", "6")
    assert code == 1 and "tail missing" in message and "#6" in message


def test_expect_at_least_passes_when_the_chain_reaches_it(events):
    assert _verify("--expect-at-least", "5") == (0, "")
    assert _verify("--expect-at-least", "-1")[0] == 2


def test_the_head_sequence_is_published_as_a_metric(events):
    assert b"portal_audit_head_sequence 5.0" in render_latest()
