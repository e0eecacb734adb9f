"""A dead letter replayed end to end in the browser: evidence, request, four eyes, delivery.

The intent is driven through the real engine (``run_once``, inline) against the gateway
simulator over HTTP. Its recipient ends ``00203``: the simulator answers 503 to the first
three requests with one idempotency key and accepts the fourth. ``sms.fast`` allows three
attempts, so the first generation is exhausted (a dead letter); the replay's first
attempt is the fourth request with the intent's id and is accepted. Payloads are never
edited: the same message succeeds because the gateway recovered.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections
from django.utils import timezone

from deadletters.models import DeadLetter, DeadLetterStatus, ReplayRequest, ReplayStatus
from gateways.simulator import start_simulator_in_thread
from intents.dispatch import run_once
from intents.models import Intent, IntentStatus, ReasonCode
from intents.services import intent_submit
from portal import clock
from tests.accounts.factories import PASSWORD, create_staff_user
from tests.browser.helpers import assert_styled, fresh_code, log_in, log_out, shot

pytestmark = [
    pytest.mark.browser,
    # The live server needs committed data. serialized_rollback: each test starts from what
    # the migrations made (the role groups, the audit chain head), as a fresh install does,
    # even after an earlier transactional test flushed it.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

RECOVERS_ON_FOURTH = "+15550100203"
NOTE = "Gateway outage INC-4711 is over; the provider confirmed recovery."
REASON = "Provider outage INC-4711 fixed; re-deliver what it exhausted."


def off_the_browser_thread(function: Callable[[], Any]) -> Any:
    """Run ``function`` in a thread of its own and return its result.

    Playwright's sync API keeps an asyncio loop running in the test's thread, and the
    engine sends its gateway requests with ``asyncio.run``, which refuses to start inside
    a running loop: the dispatcher gets a thread, as it has in production.
    """
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = function()
        except BaseException as exc:  # re-raised in the test's thread
            result["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=target, name="dispatcher-under-test")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


@pytest.fixture
def simulator(settings):
    server, base_url = start_simulator_in_thread()
    settings.GATEWAY_SMS_URL = f"{base_url}/sms"
    yield server
    server.stop()


@pytest.fixture
def exhausted_intent(tenant, targets, simulator) -> Intent:
    """An sms.fast intent whose three attempts all got 503: exhausted, dead-lettered."""
    # The engine's clock starts in the recent past and moves past each retry delay, so
    # nothing waits; everything it stamps is still in the past for the browser steps.
    with clock.override(timezone.now() - dt.timedelta(seconds=30)) as engine_clock:
        intent = intent_submit(
            tenant=tenant,
            idempotency_key="order-17-otp",
            target_key="sms.fast",
            contract_version=None,
            payload={"to": RECOVERS_ON_FOURTH, "text": "Your code is 123456"},
        ).intent
        for _ in range(6):
            off_the_browser_thread(run_once)
            intent.refresh_from_db()
            if intent.is_terminal:
                break
            engine_clock.advance(1.5)
    assert intent.status == IntentStatus.EXHAUSTED, intent.status
    assert [m["status"] for m in simulator.simulator.messages()] == [503, 503, 503]
    return intent


def open_dead_letter_page(page, intent: Intent) -> None:
    page.goto("/admin/")
    page.locator("#content-main").get_by_role("link", name="Dead letters", exact=True).click()
    page.wait_for_url("**/admin/deadletters/deadletter/")
    row = page.locator("#result_list tbody tr", has_text="sms.fast")
    assert row.count() == 1
    assert "attempts_exhausted" in row.inner_text()
    row.locator("th a, td a").first.click()
    page.wait_for_url("**/admin/deadletters/deadletter/*/change/")
    assert str(intent.public_id) in page.inner_text(".field-intent_link")


def readonly(page, field: str) -> str:
    return page.inner_text(f".field-{field} .readonly").strip()


def test_operator_requests_approver_approves_and_the_replay_is_delivered(
    new_page, exhausted_intent, simulator
):
    intent = exhausted_intent
    dead_letter = DeadLetter.objects.get(intent=intent)
    # The operator also holds the approver role: four eyes must still stop them.
    olga, olga_device = create_staff_user("olga", roles=["operators", "approvers"])
    abel, abel_device = create_staff_user("abel", roles=["approvers"])

    # --- Operator: log in with 2FA, find the dead letter, add a note.
    operator = new_page()
    log_in(operator, "olga", PASSWORD, fresh_code(olga_device))
    operator.wait_for_url("**/admin/")
    open_dead_letter_page(operator, intent)
    assert readonly(operator, "status") == DeadLetterStatus.OPEN.label
    assert readonly(operator, "reason_code") == ReasonCode.ATTEMPTS_EXHAUSTED.value
    assert_styled(operator)
    operator.fill("#dead-letter-actions textarea[name=text]", NOTE)
    operator.click("#dead-letter-actions input[value='Add note']")
    operator.wait_for_load_state()
    assert "Note added." in operator.inner_text(".messagelist")
    assert NOTE in operator.inner_text("#evidence")
    history = operator.locator("#history tbody tr", has_text="evidence.added")
    assert history.count() == 1 and "olga" in history.inner_text()
    shot(operator, "dead-letter")

    # --- Plan: preview the matching dead letters, then request the replay.
    operator.goto("/admin/deadletters/deadletter/")
    operator.click("#plan-replay")
    operator.wait_for_url("**/replayrequest/plan/")
    operator.select_option("#plan-filters select[name=reason]", "attempts_exhausted")
    operator.fill("#plan-filters input[name=target]", "sms.fast")
    operator.click("#plan-filters input[type=submit]")
    operator.wait_for_selector("#plan-preview")
    assert operator.inner_text("#plan-count") == "1"
    assert str(dead_letter.public_id) in operator.inner_text("#plan-preview")
    shot(operator, "replay-plan")
    operator.fill("#replay-request-form textarea", REASON)
    operator.click("#replay-request-form input[type=submit]")
    operator.wait_for_url("**/admin/deadletters/replayrequest/*/change/")
    assert "created for 1 dead letters" in operator.inner_text(".messagelist")
    replay = ReplayRequest.objects.get()
    assert replay.status == ReplayStatus.PENDING
    assert replay.requested_by == olga
    assert replay.reason == REASON
    assert replay.filters == {"reason": "attempts_exhausted", "target": "sms.fast"}

    # --- The requester cannot approve: the page refuses, and so does the service.
    refusal = operator.locator("#self-approval-refusal")
    assert refusal.is_visible()
    assert "a different approver must decide it" in refusal.inner_text()
    assert operator.locator("#replay-decision form").count() == 0
    shot(operator, "replay-request-self-refused")
    # A hand-made approval POST (as a tampered page would send) is refused too.
    operator.evaluate(
        """([action, code]) => {
            const form = document.createElement('form');
            form.method = 'post';
            form.action = action;
            const token = document.querySelector('input[name=csrfmiddlewaretoken]').value;
            for (const [name, value] of [['csrfmiddlewaretoken', token],
                                         ['decision', 'approve'], ['otp_token', code]]) {
                const input = document.createElement('input');
                input.type = 'hidden'; input.name = name; input.value = value;
                form.appendChild(input);
            }
            document.body.appendChild(form);
            form.submit();
        }""",
        [f"/admin/deadletters/replayrequest/{replay.pk}/decide/", fresh_code(olga_device)],
    )
    operator.wait_for_url("**/admin/deadletters/replayrequest/*/change/")
    operator.wait_for_selector(".messagelist .error")
    assert "a different approver must decide it" in operator.inner_text(".messagelist")
    replay.refresh_from_db()
    assert replay.status == ReplayStatus.PENDING and replay.decided_by is None
    log_out(operator)

    # --- Approver: log in, find the request in the queue, approve with a fresh code.
    approver = new_page()
    log_in(approver, "abel", PASSWORD, fresh_code(abel_device))
    approver.wait_for_url("**/admin/")
    approver.goto("/admin/deadletters/replayrequest/approvals/")
    queue = approver.locator("#approvals-queue")
    assert "olga" in queue.inner_text()
    queue.locator(f"a:has-text('{replay.public_id}')").click()
    approver.wait_for_url(f"**/admin/deadletters/replayrequest/{replay.pk}/change/")
    assert str(dead_letter.public_id) in approver.inner_text("#replay-items")
    form = approver.locator("#replay-decision form")
    form.locator("input[name=decision][value=approve]").check()
    # The login code was spent: the step-up needs a code the device has not seen yet.
    form.locator("input[name=otp_token]").fill(fresh_code(abel_device))
    shot(approver, "replay-approval")
    form.locator("input[type=submit]").click()
    approver.wait_for_url(f"**/admin/deadletters/replayrequest/{replay.pk}/change/")
    assert "approved" in approver.inner_text(".messagelist")
    # django-q2 runs synchronously in tests: the replay has executed already.
    assert "done" in approver.inner_text("#replay-decision")
    assert "delivering" in approver.inner_text("#replay-items .replay-outcome")
    shot(approver, "replay-request-done")

    replay.refresh_from_db()
    assert replay.status == ReplayStatus.DONE and replay.decided_by == abel
    intent.refresh_from_db()
    assert intent.status == IntentStatus.PENDING and intent.generation == 2
    dead_letter.refresh_from_db()
    assert dead_letter.status == DeadLetterStatus.REPLAYED

    # --- The dispatcher delivers the re-opened intent: the gateway accepts it now.
    assert off_the_browser_thread(run_once) == 1
    intent.refresh_from_db()
    assert intent.status == IntentStatus.ACCEPTED
    deliveries = simulator.simulator.messages()
    assert [m["status"] for m in deliveries] == [503, 503, 503, 202]
    assert {m["idempotency_key"] for m in deliveries} == {str(intent.public_id)}

    # The request page follows the intent: this item's outcome is now "accepted".
    approver.goto(f"/admin/deadletters/replayrequest/{replay.pk}/change/")
    assert approver.inner_text("#replay-items .replay-outcome") == "accepted"
    assert "accepted: 1" in approver.inner_text("#replay-outcome-counts")
    shot(approver, "replay-request-accepted")

    approver.goto(f"/admin/intents/intent/{intent.pk}/change/")
    assert readonly(approver, "status") == IntentStatus.ACCEPTED.label
    assert readonly(approver, "reason_code") == ReasonCode.GATEWAY_ACCEPTED.label
    assert readonly(approver, "generation") == "2"
    assert readonly(approver, "attempts_count") == "4"
    assert_styled(approver)
    shot(approver, "intent-accepted")

    # --- The operations dashboard shows the day's outcomes, as inline SVG charts.
    approver.goto("/admin/")
    approver.get_by_role("link", name="Operations dashboard").click()
    approver.wait_for_url("**/admin/operations/**")
    assert approver.locator("svg").count() >= 2
    assert "accepted" in approver.inner_text("#content")
    assert_styled(approver)
    shot(approver, "operations-dashboard")
