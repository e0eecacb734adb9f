"""Each replayed dead letter's outcome, on the request page and in ``replay show``:
accepted, failed again (with a link to the new dead letter), still delivering, skipped."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from deadletters import selectors
from deadletters.models import DeadLetter, ReplayItemOutcome
from intents.dispatch import run_once
from tests.accounts.factories import verified_client

from .conftest import FLAKY_5, REJECTED, TRANSIENT
from .test_replay_execution import approve, reload

pytestmark = pytest.mark.django_db


def drive(frozen_clock, rounds: int = 10) -> None:
    for _ in range(rounds):
        run_once()
        frozen_clock.advance(2)


@pytest.fixture
def mixed_replay(
    frozen_clock,
    traveller,
    scripted,
    dead_lettered,
    replay_requested,
    approver,
    django_capture_on_commit_callbacks,
):
    """Three exhausted or failed intents replayed: one recovers, two fail again."""
    recovers = dead_lettered(FLAKY_5)  # 503 five times with one key, then accepted
    keeps_failing = dead_lettered(TRANSIENT)
    rejected = dead_lettered(REJECTED)
    letters = [intent.dead_letters.get() for intent in (recovers, keeps_failing, rejected)]
    request = replay_requested(*letters)
    frozen_clock.advance(60)
    request = approve(request, approver, django_capture_on_commit_callbacks)
    return request, letters


def outcomes(request) -> dict[int, selectors.ReplayItemResult]:
    results = selectors.replay_item_results(
        items=list(selectors.replay_request_items(request=request))
    )
    return {result.item.dead_letter_id: result for result in results}


def test_outcomes_follow_the_intents_after_execution(frozen_clock, mixed_replay):
    request, (recovers, keeps_failing, rejected) = mixed_replay
    before = outcomes(request)
    assert {result.outcome for result in before.values()} == {"delivering"}

    drive(frozen_clock)
    after = outcomes(request)
    assert after[recovers.pk].outcome == "accepted"
    assert after[recovers.pk].new_dead_letter is None
    for letter, reason in ((keeps_failing, "attempts_exhausted"), (rejected, "gateway_rejected")):
        result = after[letter.pk]
        assert result.outcome == "failed_again"
        assert result.detail == f"generation 2: {reason}"
        assert result.new_dead_letter == DeadLetter.objects.get(
            intent_id=letter.intent_id, generation=2
        )
    counts = selectors.replay_result_counts(list(after.values()))
    assert counts == [("accepted", 1), ("failed_again", 2)]


def test_the_request_page_lists_each_outcome_with_a_link_to_the_new_dead_letter(
    frozen_clock, mixed_replay, operator
):
    request, (_recovers, keeps_failing, _rejected) = mixed_replay
    drive(frozen_clock)
    page = (
        verified_client(operator)
        .get(f"/admin/deadletters/replayrequest/{request.pk}/change/")
        .content.decode()
    )
    counts = page.split('id="replay-outcome-counts"')[1].split("</p>")[0]
    assert "accepted</span>: 1" in counts and "failed_again</span>: 2" in counts
    again = DeadLetter.objects.get(intent_id=keeps_failing.intent_id, generation=2)
    assert f'href="/admin/deadletters/deadletter/{again.pk}/change/"' in page
    assert "generation 2 delivered" in page


def test_a_skipped_item_says_why(
    frozen_clock,
    traveller,
    scripted,
    dead_lettered,
    replay_requested,
    approver,
    django_capture_on_commit_callbacks,
):
    intent = dead_lettered(REJECTED)
    letter = intent.dead_letters.get()
    request = replay_requested(letter)
    # The intent moved on (another generation) before the replay ran.
    type(intent).objects.filter(pk=intent.pk).update(generation=5)
    request = approve(request, approver, django_capture_on_commit_callbacks)
    result = outcomes(request)[letter.pk]
    assert result.item.outcome == ReplayItemOutcome.SKIPPED
    assert (result.outcome, result.detail) == ("skipped", "intent is at generation 5 now")


def test_the_replay_command_shows_each_outcome(frozen_clock, mixed_replay):
    request, (recovers, keeps_failing, _rejected) = mixed_replay
    drive(frozen_clock)
    out = io.StringIO()
    call_command("replay", "show", str(request.public_id), stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"replay request {request.public_id}: done, requested by olga at ")
    assert lines[0].endswith(", decided by abel")
    recovered = next(line for line in lines if str(reload(recovers).public_id) in line)
    assert recovered.endswith("accepted: generation 2 delivered")
    again = DeadLetter.objects.get(intent_id=keeps_failing.intent_id, generation=2)
    failed = next(line for line in lines if str(keeps_failing.public_id) in line)
    assert (
        f"failed_again: generation 2: attempts_exhausted (new dead letter {again.public_id})"
        in failed
    )
    assert lines[-1] == "accepted: 1, failed_again: 2"
