"""The replay screens: plan with preview, request, approvals queue, four-eyes decision."""

from __future__ import annotations

import re

import pytest

from deadletters.models import (
    DeadLetterStatus,
    ReplayItemOutcome,
    ReplayRequest,
    ReplayStatus,
)
from intents.models import IntentStatus
from tests.accounts.factories import create_staff_user, totp_code, verified_client

pytestmark = pytest.mark.django_db

BASE = "/admin/deadletters/replayrequest/"
PLAN = f"{BASE}plan/"
APPROVALS = f"{BASE}approvals/"


def detail_url(replay: ReplayRequest) -> str:
    return f"{BASE}{replay.pk}/change/"


def decide_url(replay: ReplayRequest) -> str:
    return f"{BASE}{replay.pk}/decide/"


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def plan_count(response) -> int:
    match = re.search(r'id="plan-count">(\d+)<', response.content.decode())
    assert match, "no preview on the page"
    return int(match.group(1))


@pytest.fixture
def requester(db):
    return create_staff_user("rita", roles=["operators"])


@pytest.fixture
def decider(db):
    return create_staff_user("abel2", roles=["approvers"])


def test_plan_previews_count_and_sample(dead_letter, requester, submit):
    from tests.deadletters.conftest import TRANSIENT

    rejected = [dead_letter(key=f"r{i}") for i in range(2)]
    exhausted = dead_letter(TRANSIENT, key="x")
    client = verified_client(requester)
    blank = client.get(PLAN)
    assert blank.status_code == 200
    assert 'id="plan-preview"' not in blank.content.decode()

    everything = client.get(f"{PLAN}?preview=1")
    assert plan_count(everything) == 3
    response = client.get(f"{PLAN}?preview=1&reason=gateway_rejected&target=sms.fast")
    assert plan_count(response) == 2
    content = response.content.decode()
    for letter in rejected:
        assert str(letter.public_id) in content
    assert str(exhausted.public_id) not in content
    assert 'id="replay-request-form"' in content
    # The filters ride along as hidden fields of the request form.
    assert 'type="hidden" name="reason" value="gateway_rejected"' in content
    none = client.get(f"{PLAN}?preview=1&target=push.alert")
    assert plan_count(none) == 0
    assert 'id="replay-request-form"' not in none.content.decode()


def test_plan_page_roles(dead_letter):
    dead_letter()
    # Approvers may preview but not request; auditors and others may not plan at all.
    approver_page = verified_client(create_staff_user("abby", roles=["approvers"])).get(
        f"{PLAN}?preview=1"
    )
    assert plan_count(approver_page) == 1
    assert 'id="replay-request-form"' not in approver_page.content.decode()
    approver_post = verified_client(create_staff_user("abe", roles=["approvers"])).post(
        PLAN, {"replay-reason": "try again"}
    )
    assert approver_post.status_code == 403
    for username, roles in (("ada", ["auditors"]), ("pat", ["platform_admins"]), ("nob", [])):
        client = verified_client(create_staff_user(username, roles=roles))
        assert client.get(PLAN).status_code == 403
        assert client.post(PLAN, {"replay-reason": "x"}).status_code == 403
    assert not ReplayRequest.objects.exists()


def test_a_request_needs_a_reason(dead_letter, requester):
    dead_letter()
    client = verified_client(requester)
    response = client.post(PLAN, {"reason": "gateway_rejected", "replay-reason": "  "})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert not ReplayRequest.objects.exists()


def test_nothing_to_replay_is_reported(dead_letter, requester):
    dead_letter()
    client = verified_client(requester)
    response = client.post(PLAN, {"target": "push.alert", "replay-reason": "fixed"}, follow=True)
    assert any("No open dead letter matches" in text for text in messages_of(response))
    assert not ReplayRequest.objects.exists()


def test_plan_request_then_another_approver_approves_and_the_intents_reopen(
    dead_letter, requester, decider, traveller, django_capture_on_commit_callbacks
):
    letters = [dead_letter(key=f"k{i}") for i in range(2)]
    operator_client = verified_client(requester)
    preview = operator_client.get(f"{PLAN}?preview=1&reason=gateway_rejected")
    assert plan_count(preview) == 2

    response = operator_client.post(
        PLAN, {"reason": "gateway_rejected", "replay-reason": "The client fixed the numbers."}
    )
    replay = ReplayRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == detail_url(replay)
    assert replay.status == ReplayStatus.PENDING
    assert replay.reason == "The client fixed the numbers."
    assert replay.requested_by == requester[0]
    assert replay.filters["reason"] == "gateway_rejected"
    assert replay.items.count() == 2
    for letter in letters:
        letter.refresh_from_db()
        assert letter.status == DeadLetterStatus.REPLAY_PENDING
    # The requester sees the request but no decision form.
    own_page = operator_client.get(detail_url(replay)).content.decode()
    assert 'id="self-approval-refusal"' in own_page
    assert "/decide/" not in own_page

    approver_client = verified_client(decider)
    queue = approver_client.get(APPROVALS)
    assert queue.status_code == 200
    assert str(replay.public_id) in queue.content.decode()
    page = approver_client.get(detail_url(replay)).content.decode()
    assert decide_url(replay) in page
    assert 'name="otp_token"' in page

    with django_capture_on_commit_callbacks(execute=True):
        response = approver_client.post(
            decide_url(replay),
            {"decision": "approve", "otp_token": totp_code(decider[1])},
            follow=True,
        )
    # The execution task is queued on commit, which the test runs when the block ends.
    assert messages_of(response) == [
        f"Replay request {replay.public_id} approved; its intents are being re-opened "
        "in the background."
    ]
    replay.refresh_from_db()
    assert replay.status == ReplayStatus.DONE  # django-q2 runs the task at once in tests
    assert replay.decided_by == decider[0]
    for letter in letters:
        letter.refresh_from_db()
        letter.intent.refresh_from_db()
        assert letter.status == DeadLetterStatus.REPLAYED
        assert letter.intent.generation == 2
        assert letter.intent.status == IntentStatus.PENDING
    assert set(replay.items.values_list("outcome", flat=True)) == {ReplayItemOutcome.REOPENED}

    done = approver_client.get(detail_url(replay))
    content = done.content.decode()
    # Re-opened and not yet attempted: both items are being delivered.
    assert "delivering</span>: 2" in content
    assert content.count("generation 2 is pending") == 2
    assert str(replay.public_id) not in approver_client.get(APPROVALS).content.decode()


def test_the_requester_cannot_approve_their_own_request(
    dead_letter, traveller, decider, django_capture_on_commit_callbacks
):
    letter = dead_letter()
    both = create_staff_user("bea", roles=["operators", "approvers"])
    client = verified_client(both)
    client.post(PLAN, {"replay-reason": "fixed it myself"})
    replay = ReplayRequest.objects.get()
    assert replay.requested_by == both[0]

    page = client.get(detail_url(replay)).content.decode()
    assert "You requested this replay; a different approver must decide it." in page
    assert 'name="otp_token"' not in page
    assert str(replay.public_id) not in client.get(APPROVALS).content.decode()

    code = totp_code(both[1])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            decide_url(replay), {"decision": "approve", "otp_token": code}, follow=True
        )
    assert messages_of(response) == [
        "You requested this replay; a different approver must decide it."
    ]
    replay.refresh_from_db()
    assert replay.status == ReplayStatus.PENDING
    assert replay.decided_by is None
    letter.refresh_from_db()
    assert letter.status == DeadLetterStatus.REPLAY_PENDING
    assert letter.intent.generation == 1


def test_a_wrong_or_reused_code_is_refused(
    dead_letter, requester, decider, traveller, replay_requested
):
    replay = replay_requested(dead_letter())
    client = verified_client(decider)
    good = totp_code(decider[1])
    wrong = f"{(int(good) + 1) % 1_000_000:06d}"
    response = client.post(
        decide_url(replay), {"decision": "approve", "otp_token": wrong}, follow=True
    )
    (text,) = messages_of(response)
    assert "wrong or was already used" in text
    response = client.post(
        decide_url(replay), {"decision": "approve", "otp_token": "12"}, follow=True
    )
    assert messages_of(response) == [
        "Authenticator code: Enter the 6-digit code from your authenticator app."
    ]
    replay.refresh_from_db()
    assert replay.status == ReplayStatus.PENDING


def test_reject_with_a_reason_reopens_the_dead_letters(
    dead_letter, decider, traveller, replay_requested
):
    letter = dead_letter()
    replay = replay_requested(letter)
    client = verified_client(decider)
    response = client.post(
        decide_url(replay), {"decision": "reject", "otp_token": totp_code(decider[1])}, follow=True
    )
    assert messages_of(response) == ["Reason (required to reject): Say why the replay is rejected."]
    traveller.shift(30)
    response = client.post(
        decide_url(replay),
        {
            "decision": "reject",
            "reason": "The gateway is still down.",
            "otp_token": totp_code(decider[1]),
        },
        follow=True,
    )
    assert messages_of(response) == [
        f"Replay request {replay.public_id} rejected; its dead letters re-open."
    ]
    replay.refresh_from_db()
    assert replay.status == ReplayStatus.REJECTED
    assert replay.decision_reason == "The gateway is still down."
    letter.refresh_from_db()
    assert letter.status == DeadLetterStatus.OPEN
    assert letter.intent.generation == 1


def test_only_approvers_decide_and_see_the_queue(dead_letter, traveller, replay_requested):
    replay = replay_requested(dead_letter())
    for username, roles in (("opal", ["operators"]), ("ada", ["auditors"])):
        user_and_device = create_staff_user(username, roles=roles)
        client = verified_client(user_and_device)
        assert client.get(APPROVALS).status_code == 403
        response = client.post(
            decide_url(replay),
            {"decision": "approve", "otp_token": totp_code(user_and_device[1])},
        )
        assert response.status_code == 403
        assert client.get(detail_url(replay)).status_code == 200  # reviewing is allowed
    assert (
        verified_client(create_staff_user("pat", roles=["platform_admins"]))
        .get(detail_url(replay))
        .status_code
        == 403
    )
    replay.refresh_from_db()
    assert replay.status == ReplayStatus.PENDING
    assert verified_client(create_staff_user("nob")).get(BASE).status_code == 403


def test_approvers_scoped_to_other_tenants_never_see_the_request(
    dead_letter, traveller, replay_requested, other_tenant
):
    replay = replay_requested(dead_letter())
    scoped = create_staff_user("sam", roles=["approvers"], tenants=[other_tenant])
    client = verified_client(scoped)
    assert str(replay.public_id) not in client.get(APPROVALS).content.decode()
    assert str(replay.public_id) not in client.get(BASE).content.decode()
    assert client.get(detail_url(replay)).status_code == 302
    assert (
        client.post(
            decide_url(replay), {"decision": "approve", "otp_token": totp_code(scoped[1])}
        ).status_code
        == 404
    )
    replay.refresh_from_db()
    assert replay.status == ReplayStatus.PENDING


def test_the_decision_needs_post(dead_letter, decider, replay_requested):
    replay = replay_requested(dead_letter())
    assert verified_client(decider).get(decide_url(replay)).status_code == 405


def test_the_replay_list_does_not_query_per_row(dead_letter, replay_requested, decider):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    replay_requested(dead_letter(key="first"))
    client = verified_client(decider)
    with CaptureQueriesContext(connection) as one:
        assert client.get(BASE).status_code == 200
    for i in range(3):
        replay_requested(dead_letter(key=f"more-{i}"), dead_letter(key=f"extra-{i}"))
    with CaptureQueriesContext(connection) as four:
        response = client.get(BASE)
    assert response.content.decode().count("/admin/deadletters/replayrequest/") > 4
    assert len(four) == len(one)


def test_an_expired_request_cannot_be_decided(
    dead_letter, decider, traveller, frozen_clock, replay_requested, settings
):
    replay = replay_requested(dead_letter())
    frozen_clock.advance(settings.REPLAY_REQUEST_TTL_S + 1)
    client = verified_client(decider)
    page = client.get(detail_url(replay)).content.decode()
    assert "This request expired" in page
    assert 'name="otp_token"' not in page
    assert str(replay.public_id) not in client.get(APPROVALS).content.decode()
    response = client.post(
        decide_url(replay), {"decision": "approve", "otp_token": totp_code(decider[1])}, follow=True
    )
    (text,) = messages_of(response)
    assert "expired" in text
    replay.refresh_from_db()
    assert replay.decided_by is None


def test_bad_plan_filters_are_shown_on_the_form(dead_letter, requester):
    dead_letter()
    client = verified_client(requester)
    response = client.get(f"{PLAN}?preview=1&since=yesterday&reason=bogus")
    assert response.status_code == 200
    content = response.content.decode()
    assert "Enter a valid date/time." in content
    assert "Select a valid choice." in content
    assert 'id="plan-preview"' not in content
    assert 'id="replay-request-form"' not in content


def test_operator_pages_have_no_inline_scripts_or_styles(dead_letter, traveller, replay_requested):
    """The CSP allows scripts only from our origin; the pages carry their CSS as files."""
    letter = dead_letter()
    replay = replay_requested(letter)
    client = verified_client(create_staff_user("root", roles=["operators", "approvers"]))
    pages = [
        "/admin/intents/intent/",
        f"/admin/intents/intent/{letter.intent_id}/change/",
        "/admin/deadletters/deadletter/",
        f"/admin/deadletters/deadletter/{letter.pk}/change/",
        BASE,
        detail_url(replay),
        f"{PLAN}?preview=1",
        APPROVALS,
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        content = response.content.decode()
        assert " style=" not in content, url
        assert "<style" not in content, url
        scripts = re.findall(r"<script[^>]*>", content)
        assert all("src=" in tag for tag in scripts), url
        assert "Content-Security-Policy" in response.headers
    detail = client.get(f"/admin/deadletters/deadletter/{letter.pk}/change/").content.decode()
    assert "deadletters/admin.css" in detail
