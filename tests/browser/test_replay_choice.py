"""Replaying what the operator chooses, in the browser: the list's bulk action and one
dead letter's Replay button, through four eyes, to each item's outcome.

Three intents are exhausted or rejected by the real engine (``run_once`` against the
scripted in-process gateway, off the browser's thread). ``…00205`` answers 503 to the
first five requests: sms.fast's three attempts fail, the replay's third is accepted;
``…00503`` and ``…00400`` fail again, so the request page shows a mixed outcome.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from deadletters.models import DeadLetter, ReplayRequest, ReplayStatus
from intents.dispatch import run_once
from intents.models import Intent
from portal import clock
from tests.accounts.factories import PASSWORD, create_staff_user
from tests.browser.helpers import assert_styled, fresh_code, log_in, log_out, shot
from tests.browser.test_replay_flow import off_the_browser_thread
from tests.engine.conftest import scripted, submit  # noqa: F401  (shared engine fixtures)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

RECOVERS = "+15550100205"
KEEPS_FAILING = "+15550100503"
REJECTED = "+15550100400"


def drive_engine(rounds: int = 8) -> None:
    """Run the dispatcher until nothing is due, moving its clock past each retry delay."""
    with clock.override(timezone.now()) as engine_clock:
        for _ in range(rounds):
            off_the_browser_thread(run_once)
            engine_clock.advance(1.5)


@pytest.fixture
def dead_letters(tenant, targets, scripted, submit) -> dict[str, DeadLetter]:  # noqa: F811
    with clock.override(timezone.now() - dt.timedelta(minutes=2)) as engine_clock:
        intents = {
            to: submit(to, key=f"order-{to[-5:]}") for to in (RECOVERS, KEEPS_FAILING, REJECTED)
        }
        for _ in range(6):
            off_the_browser_thread(run_once)
            engine_clock.advance(1.5)
    return {to: DeadLetter.objects.get(intent=intent) for to, intent in intents.items()}


def test_a_selection_from_the_list_is_replayed_and_each_outcome_shown(new_page, dead_letters):
    _olga, olga_device = create_staff_user("olga", roles=["operators"])
    _abel, abel_device = create_staff_user("abel", roles=["approvers"])

    operator = new_page()
    log_in(operator, "olga", PASSWORD, fresh_code(olga_device))
    operator.goto("/admin/deadletters/deadletter/")
    for letter in dead_letters.values():
        operator.locator(
            f"#result_list tr:has(span[title='{letter.public_id}']) input.action-select"
        ).check()
    operator.select_option("select[name=action]", "plan_replay_of_selected")
    operator.click("button[name=index]")
    operator.wait_for_selector("#plan-preview")
    assert operator.inner_text("#plan-count") == "3"
    assert_styled(operator)
    shot(operator, "replay-plan-selection")
    operator.fill("#replay-request-form textarea", "Provider outage INC-9 over; replay the three.")
    operator.click("#replay-request-form input[type=submit]")
    operator.wait_for_url("**/admin/deadletters/replayrequest/*/change/")
    replay = ReplayRequest.objects.get()
    assert replay.items.count() == 3
    log_out(operator)

    approver = new_page()
    log_in(approver, "abel", PASSWORD, fresh_code(abel_device))
    approver.goto(f"/admin/deadletters/replayrequest/{replay.pk}/change/")
    form = approver.locator("#replay-decision form")
    form.locator("input[name=decision][value=approve]").check()
    form.locator("input[name=otp_token]").fill(fresh_code(abel_device))
    form.locator("input[type=submit]").click()
    approver.wait_for_url(f"**/admin/deadletters/replayrequest/{replay.pk}/change/")
    replay.refresh_from_db()
    assert replay.status == ReplayStatus.DONE

    drive_engine()
    approver.reload()
    counts = approver.inner_text("#replay-outcome-counts")
    assert counts == "accepted: 1, failed_again: 2"
    rows = {
        letter_to: approver.locator(
            f"#replay-items tr.replay-item:has(span[title='{dead_letters[letter_to].public_id}'])"
        )
        for letter_to in dead_letters
    }
    assert rows[RECOVERS].locator(".replay-outcome").inner_text() == "accepted"
    for to in (KEEPS_FAILING, REJECTED):
        assert rows[to].locator(".replay-outcome").inner_text() == "failed_again"
        again = DeadLetter.objects.get(intent_id=dead_letters[to].intent_id, generation=2)
        link = rows[to].locator("a.new-dead-letter")
        assert link.get_attribute("href") == f"/admin/deadletters/deadletter/{again.pk}/change/"
    assert Intent.objects.get(pk=dead_letters[RECOVERS].intent_id).status == "accepted"
    assert_styled(approver)
    shot(approver, "replay-request-outcomes")


def test_one_dead_letter_is_replayed_from_its_page(new_page, dead_letters):
    _olga, olga_device = create_staff_user("olga", roles=["operators"])
    letter = dead_letters[RECOVERS]
    operator = new_page()
    log_in(operator, "olga", PASSWORD, fresh_code(olga_device))
    operator.goto(f"/admin/deadletters/deadletter/{letter.pk}/change/")
    operator.click("#replay-this")
    operator.wait_for_selector("#plan-preview")
    assert operator.inner_text("#plan-count") == "1"
    assert str(letter.public_id) in operator.inner_text("#plan-preview")
    operator.fill("#replay-request-form textarea", "Recipient's carrier fixed.")
    operator.click("#replay-request-form input[type=submit]")
    operator.wait_for_url("**/admin/deadletters/replayrequest/*/change/")
    replay = ReplayRequest.objects.get()
    assert [item.dead_letter_id for item in replay.items.all()] == [letter.pk]
    assert replay.status == ReplayStatus.PENDING
