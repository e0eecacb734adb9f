"""Executing an approved replay: each intent re-opens as a new generation and is delivered."""

from __future__ import annotations

import datetime as dt

import pytest

from deadletters import services
from deadletters.models import (
    DeadLetter,
    DeadLetterStatus,
    ReplayItemOutcome,
    ReplayRequest,
    ReplayStatus,
)
from intents.dispatch import run_once
from intents.models import Attempt, IntentStatus, ReasonCode
from intents.services import intent_reopen
from portal.audit.models import AuditEvent
from tests.accounts.factories import totp_code

from .conftest import FLAKY_5, REJECTED, TRANSIENT

pytestmark = pytest.mark.django_db


def reload(obj):
    obj.refresh_from_db()
    return obj


def approve(request, approver, capture):
    """Approve with a fresh code; the execution task runs when the approval commits."""
    user, device = approver
    with capture(execute=True):
        services.replay_request_approve(request=request, approver=user, otp_token=totp_code(device))
    return reload(request)


def test_approval_reopens_each_intent_with_a_new_generation(
    frozen_clock,
    traveller,
    dead_lettered,
    replay_requested,
    approver,
    django_capture_on_commit_callbacks,
):
    failed = dead_lettered(REJECTED)
    exhausted = dead_lettered(TRANSIENT)
    dls = [failed.dead_letters.get(), exhausted.dead_letters.get()]
    request = replay_requested(*dls)
    frozen_clock.advance(600)
    request = approve(request, approver, django_capture_on_commit_callbacks)
    assert request.status == ReplayStatus.DONE
    assert request.finished_at == frozen_clock.now
    for intent in (reload(failed), reload(exhausted)):
        assert intent.status == IntentStatus.PENDING
        assert intent.generation == 2
        assert intent.reason_code == ""
        assert intent.finished_at is None
        assert intent.next_attempt_at == frozen_clock.now
        # A fresh policy's worth of attempts on top of those made, and a fresh deadline.
        assert intent.max_attempts == intent.attempts_count + 3
        assert intent.deadline_at == frozen_clock.now + dt.timedelta(seconds=60)
    assert {reload(dl).status for dl in dls} == {DeadLetterStatus.REPLAYED}
    assert sorted(request.items.values_list("dead_letter_id", "outcome", "detail")) == sorted(
        (dl.pk, ReplayItemOutcome.REOPENED, "re-opened as generation 2") for dl in dls
    )
    event = AuditEvent.objects.get(action="replay.executed")
    assert (event.actor_type, event.object_id) == ("system", str(request.public_id))
    assert event.data == {"reopened": 2, "skipped": 0, "approved_by": "abel"}


def test_reopened_intents_are_delivered_by_the_engine(
    frozen_clock,
    traveller,
    scripted,
    dead_lettered,
    replay_requested,
    approver,
    django_capture_on_commit_callbacks,
):
    intent = dead_lettered(FLAKY_5)  # 503 five times, then accepted
    assert (intent.status, intent.attempts_count) == (IntentStatus.EXHAUSTED, 3)
    request = replay_requested(intent.dead_letters.get())
    frozen_clock.advance(3600)  # far past the first deadline
    approve(request, approver, django_capture_on_commit_callbacks)
    for _ in range(3):
        run_once()
        frozen_clock.advance(1)
    intent = reload(intent)
    assert intent.status == IntentStatus.ACCEPTED
    assert intent.reason_code == ReasonCode.GATEWAY_ACCEPTED
    assert list(
        Attempt.objects.filter(intent=intent)
        .order_by("number")
        .values_list("number", "generation", "outcome")
    ) == [
        (1, 1, "rejected_transient"),
        (2, 1, "rejected_transient"),
        (3, 1, "rejected_transient"),
        (4, 2, "rejected_transient"),
        (5, 2, "rejected_transient"),
        (6, 2, "accepted"),
    ]
    # One idempotency key across generations: the gateway sees one message.
    assert {call.idempotency_key for call in scripted.calls} == {str(intent.public_id)}
    assert DeadLetter.objects.filter(intent=intent).count() == 1


def test_a_replayed_intent_that_fails_again_is_dead_lettered_again(
    frozen_clock,
    traveller,
    dead_lettered,
    replay_requested,
    approver,
    django_capture_on_commit_callbacks,
):
    intent = dead_lettered(REJECTED)
    first = intent.dead_letters.get()
    approve(replay_requested(first), approver, django_capture_on_commit_callbacks)
    run_once()
    intent = reload(intent)
    assert intent.status == IntentStatus.FAILED
    assert list(
        DeadLetter.objects.filter(intent=intent)
        .order_by("generation")
        .values_list("generation", "status")
    ) == [(1, DeadLetterStatus.REPLAYED), (2, DeadLetterStatus.OPEN)]


def test_an_intent_no_longer_dead_lettered_is_skipped_with_a_reason(
    frozen_clock,
    traveller,
    dead_letter,
    replay_requested,
    approver,
    django_capture_on_commit_callbacks,
):
    moved_on, still_dead = dead_letter(), dead_letter()
    request = replay_requested(moved_on, still_dead)
    intent_reopen(intent=moved_on.intent)  # re-opened by another path meanwhile
    request = approve(request, approver, django_capture_on_commit_callbacks)
    assert request.status == ReplayStatus.DONE
    items = {item.dead_letter_id: item for item in request.items.all()}
    assert items[moved_on.pk].outcome == ReplayItemOutcome.SKIPPED
    assert items[moved_on.pk].detail == "intent is at generation 2 now"
    assert items[still_dead.pk].outcome == ReplayItemOutcome.REOPENED
    # The skipped dead letter goes back to open for a person to decide; the intent is
    # not re-opened a second time.
    assert reload(moved_on).status == DeadLetterStatus.OPEN
    assert reload(moved_on.intent).generation == 2
    assert reload(still_dead).status == DeadLetterStatus.REPLAYED
    event = AuditEvent.objects.get(action="replay.executed")
    assert (event.data["reopened"], event.data["skipped"]) == (1, 1)


def test_an_intent_in_a_non_dead_letter_state_is_skipped(
    frozen_clock,
    traveller,
    dead_letter,
    replay_requested,
    approver,
    django_capture_on_commit_callbacks,
):
    dl = dead_letter()
    request = replay_requested(dl)
    # Same generation, but no longer failed (e.g. fixed by hand in the database).
    type(dl.intent).objects.filter(pk=dl.intent_id).update(status=IntentStatus.ACCEPTED)
    request = approve(request, approver, django_capture_on_commit_callbacks)
    item = request.items.get()
    assert item.outcome == ReplayItemOutcome.SKIPPED
    assert "only failed, exhausted or expired intents can be replayed" in item.detail
    assert reload(dl).status == DeadLetterStatus.OPEN
    assert reload(dl.intent).generation == 1


def test_expired_intent_gets_a_fresh_deadline(
    frozen_clock,
    traveller,
    scripted,
    submit,
    replay_requested,
    approver,
    django_capture_on_commit_callbacks,
):
    intent = submit("+15550100001", deadline_seconds=5)
    frozen_clock.advance(10)
    run_once()
    intent = reload(intent)
    assert intent.status == IntentStatus.EXPIRED
    approve(
        replay_requested(intent.dead_letters.get()), approver, django_capture_on_commit_callbacks
    )
    intent = reload(intent)
    assert intent.deadline_at == frozen_clock.now + dt.timedelta(seconds=60)
    run_once()
    assert reload(intent).status == IntentStatus.ACCEPTED


def test_execution_runs_once_and_only_after_approval(
    frozen_clock, traveller, dead_letter, replay_requested, approver
):
    dl = dead_letter()
    request = replay_requested(dl)
    # Not approved: the task does nothing.
    assert services.replay_execute(request_id=request.pk).status == ReplayStatus.PENDING
    assert reload(dl.intent).generation == 1
    user, device = approver
    services.replay_request_approve(request=request, approver=user, otp_token=totp_code(device))
    assert services.replay_execute(request_id=request.pk).status == ReplayStatus.DONE
    # Running again (a retried task) changes nothing.
    assert services.replay_execute(request_id=request.pk).status == ReplayStatus.DONE
    assert reload(dl.intent).generation == 2
    assert AuditEvent.objects.filter(action="replay.executed").count() == 1


def test_execution_resumes_after_a_crash(
    frozen_clock, traveller, dead_letter, replay_requested, approver
):
    """A run that stopped after some items: the next run does the rest, not the done ones."""
    from deadletters import tasks

    first, second = dead_letter(), dead_letter()
    request = replay_requested(first, second)
    user, device = approver
    services.replay_request_approve(request=request, approver=user, otp_token=totp_code(device))
    ReplayRequest.objects.filter(pk=request.pk).update(status=ReplayStatus.EXECUTING)
    services.replay_execution._execute_item(item_id=request.items.get(dead_letter=first).pk)
    assert tasks.replay_execute(request.pk) == ReplayStatus.DONE
    assert reload(first.intent).generation == reload(second.intent).generation == 2
    assert set(request.items.values_list("outcome", flat=True)) == {ReplayItemOutcome.REOPENED}
