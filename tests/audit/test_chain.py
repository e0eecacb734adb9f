"""The hash chain: every event covers the previous one; audit_verify finds the first break."""

from __future__ import annotations

import itertools

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from portal.audit.models import AuditChainHead, AuditEvent
from portal.audit.selectors import audit_chain_verify
from portal.audit.services import Actor, audit_context, audit_record, current_audit_context

pytestmark = pytest.mark.django_db


def _verify():
    try:
        call_command("audit_verify")
    except CommandError as exc:
        return exc.returncode, str(exc)
    return 0, ""


def test_events_are_chained(events):
    assert [e.sequence for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == "0" * 64
    for previous, event in itertools.pairwise(events):
        assert event.prev_hash == previous.hash
    head = AuditChainHead.objects.get()
    assert (head.sequence, head.last_hash) == (5, events[-1].hash)


def test_intact_chain_verifies(events, capsys):
    call_command("audit_verify")
    assert capsys.readouterr().out.strip() == "OK: 5 events, chain intact"


def test_empty_history_verifies(db, capsys):
    call_command("audit_verify")
    assert capsys.readouterr().out.strip() == "OK: 0 events, chain intact"


def test_orm_refuses_to_change_or_delete_events(events):
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(sequence=2).update(action="x")
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(sequence=2).delete()
    event = AuditEvent.objects.get(sequence=2)
    event.action = "x"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()


def test_edited_event_is_found(events, raw_sql):
    raw_sql("UPDATE audit_auditevent SET actor_label = %s WHERE sequence = 3", ["mallory"])
    code, message = _verify()
    assert code == 1
    assert "event #3" in message and "hash mismatch" in message


def test_edited_ip_address_is_found(events, raw_sql):
    raw_sql("UPDATE audit_auditevent SET ip_address = %s WHERE sequence = 2", ["192.0.2.99"])
    _code, message = _verify()
    assert "event #2" in message and "hash mismatch" in message


def test_relinked_event_is_found(events, raw_sql):
    raw_sql("UPDATE audit_auditevent SET prev_hash = %s WHERE sequence = 4", ["f" * 64])
    code, message = _verify()
    assert code == 1
    assert "event #4" in message and "prev_hash link broken" in message


def test_rewritten_hash_is_found(events, raw_sql):
    raw_sql("UPDATE audit_auditevent SET hash = %s WHERE sequence = 2", ["e" * 64])
    result = audit_chain_verify()
    assert (result.broken_sequence, result.reason.split(":")[0]) == (2, "hash mismatch")
    assert result.count == 1


def test_deleted_event_is_found(events, raw_sql):
    raw_sql("DELETE FROM audit_auditevent WHERE sequence = 3")
    code, message = _verify()
    assert code == 1
    assert "event #4" in message and "sequence gap: expected #3" in message


def test_truncated_tail_is_found(events, raw_sql):
    raw_sql("DELETE FROM audit_auditevent WHERE sequence >= 4")
    code, message = _verify()
    assert code == 1
    assert "event #4" in message and "head mismatch" in message


def test_head_hash_mismatch_is_found(events, raw_sql):
    raw_sql("UPDATE audit_auditchainhead SET last_hash = %s WHERE id = 1", ["a" * 64])
    result = audit_chain_verify()
    assert result.broken_sequence == 5
    assert result.reason.startswith("head mismatch")


def test_hmac_key_matters(events, settings):
    settings.AUDIT_HMAC_KEY = "another key"
    result = audit_chain_verify()
    assert (result.broken_sequence, result.reason.split(":")[0]) == (1, "hash mismatch")


def test_verify_reads_in_chunks(events):
    assert audit_chain_verify(chunk_size=2).intact


def test_secret_looking_keys_are_redacted(db):
    event = audit_record(
        actor=Actor.system(),
        action="test.secrets",
        data={"password": "p", "nested": {"api_key": "k", "otp_token": "1"}, "ok": "v"},
    )
    assert event.data == {
        "password": "[redacted]",
        "nested": {"api_key": "[redacted]", "otp_token": "[redacted]"},
        "ok": "v",
    }
    assert audit_chain_verify().intact


def test_token_keys_are_redacted_whatever_else_they_are_called(db):
    event = audit_record(
        actor=Actor.system(),
        action="test.tokens",
        data={"access_token": "a", "refresh_token": "r", "tokens": ["x"], "ok": "v"},
    )
    assert event.data == {
        "access_token": "[redacted]",
        "refresh_token": "[redacted]",
        "tokens": "[redacted]",
        "ok": "v",
    }


def test_audit_context_names_the_actor(db):
    assert current_audit_context() is None
    with audit_context(actor=Actor.system("ctx"), ip_address="192.0.2.1") as context:
        assert current_audit_context() is context
    assert current_audit_context() is None


def test_invalid_ip_is_dropped(db):
    event = audit_record(actor=Actor.system(), action="test.ip", ip_address="not-an-ip")
    assert event.ip_address is None
    assert audit_chain_verify().intact


def test_chain_head_is_recreated_after_a_flush(db):
    AuditChainHead.objects.all().delete()
    event = audit_record(actor=Actor.system(), action="test.after_flush")
    assert event.sequence == 1
    assert audit_chain_verify().intact
