"""The intake's INSERT, compiled once (intents.intake_insert): exactly what save() sends."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.forms.models import model_to_dict

from intents.intake_insert import insert_intent
from intents.models import Intent, Target

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 1, 5, 12, 0, 30, 123456, tzinfo=dt.UTC)


def new_intent(tenant, key: str = "k") -> Intent:
    target = Target.objects.select_related("current_revision").get(key="sms.otp")
    revision = target.current_revision
    assert revision is not None
    return Intent(
        public_id=uuid.UUID(int=7),
        tenant=tenant,
        idempotency_key=key,
        target=target,
        target_key=target.key,
        requested_version="1.0",
        contract_version=revision.version,
        target_revision=revision,
        contract=revision.contract,
        payload='{"text":"é\u0000"}'.encode(),
        payload_sha256="a" * 64,
        metadata={"order": "A-17", "nested": [1, 2.5, None, "ü"]},
        max_attempts=5,
        attempt_timeout_s=2.5,
        next_attempt_at=AT,
        deadline_at=AT + dt.timedelta(minutes=10),
        requested_deadline_s=600.0,
        correlation_id="req-1",
        created_at=AT,
        updated_at=AT,
    )


def sent_statements(call) -> list[tuple[str, list[Any]]]:
    """(SQL, parameters) as handed to the driver; JSON adapters by the value they hold."""
    seen: list[tuple[str, list[Any]]] = []

    def spy(execute, sql, params, many, context):
        seen.append((sql, [getattr(p, "obj", p) for p in params or ()]))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        call()
    return seen


def stored(intent: Intent) -> dict[str, Any]:
    row = model_to_dict(Intent.objects.get(pk=intent.pk))
    row.pop("id")
    return row


def test_sends_the_statement_and_values_save_sends_and_stores_the_same_row(tenant, targets):
    by_save = new_intent(tenant)
    saved = sent_statements(lambda: by_save.save(force_insert=True))
    row_by_save = stored(by_save)
    Intent.objects.filter(pk=by_save.pk).delete()

    by_insert = new_intent(tenant)
    inserted = sent_statements(lambda: insert_intent(by_insert))

    assert inserted == saved
    assert by_insert.pk is not None and by_insert.pk != by_save.pk
    assert not by_insert._state.adding and by_insert._state.db == "default"
    assert stored(by_insert) == row_by_save
    # The instance reads like one save() stored: it can be saved again as an UPDATE.
    by_insert.correlation_id = "req-2"
    by_insert.save(update_fields=["correlation_id"])
    assert Intent.objects.get(pk=by_insert.pk).correlation_id == "req-2"


def test_a_used_idempotency_key_raises_and_leaves_the_instance_unsaved(tenant, targets):
    insert_intent(new_intent(tenant, key="once"))
    again = new_intent(tenant, key="once")
    again.public_id = uuid.uuid4()
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_intent(again)
    assert again.pk is None and again._state.adding
    assert Intent.objects.filter(idempotency_key="once").count() == 1
