"""Replaying what you choose: one dead letter's Replay button, the list's bulk action, and
the plan's id filter, all through the same request → four-eyes approval."""

from __future__ import annotations

import uuid

import pytest

from deadletters.filters import MAX_PLAN_IDS, ReplayFilters
from deadletters.models import DeadLetterStatus, ReplayRequest, ReplayStatus
from portal.errors import InvalidRequest
from tests.accounts.factories import create_staff_user, verified_client
from tests.deadletters.test_admin_replays import PLAN, detail_url, plan_count

pytestmark = pytest.mark.django_db

LIST = "/admin/deadletters/deadletter/"


def dead_letter_page(dead_letter) -> str:
    return f"{LIST}{dead_letter.pk}/change/"


def test_the_dead_letter_page_offers_replay_to_operators_of_open_letters(dead_letter, operator):
    letter = dead_letter()
    page = verified_client(operator).get(dead_letter_page(letter)).content.decode()
    assert f'id="replay-this" href="{PLAN}?ids={letter.public_id}"' in page
    approver = create_staff_user("abel", roles=["approvers"])
    assert (
        'id="replay-this"'
        not in verified_client(approver).get(dead_letter_page(letter)).content.decode()
    )


def test_one_dead_letter_is_planned_and_requested_by_its_id(dead_letter, operator):
    chosen, other = dead_letter(key="a"), dead_letter(key="b")
    client = verified_client(operator)
    preview = client.get(f"{PLAN}?ids={chosen.public_id}")
    assert plan_count(preview) == 1
    assert str(other.public_id) not in preview.content.decode()
    response = client.post(
        PLAN, {"ids": str(chosen.public_id), "replay-reason": "recipient fixed"}, follow=True
    )
    replay = ReplayRequest.objects.get()
    assert response.redirect_chain[-1][0] == detail_url(replay)
    assert replay.status == ReplayStatus.PENDING
    assert [item.dead_letter_id for item in replay.items.all()] == [chosen.pk]
    assert replay.filters == {"dead_letters": [str(chosen.public_id)]}
    chosen.refresh_from_db()
    other.refresh_from_db()
    assert (chosen.status, other.status) == (DeadLetterStatus.REPLAY_PENDING, DeadLetterStatus.OPEN)


def test_the_list_action_plans_exactly_the_selection(dead_letter, operator):
    letters = [dead_letter(key=f"k{n}") for n in range(3)]
    client = verified_client(operator)
    response = client.post(
        LIST,
        {
            "action": "plan_replay_of_selected",
            "_selected_action": [letters[0].pk, letters[2].pk],
        },
    )
    assert response.status_code == 200
    assert plan_count(response) == 2
    page = response.content.decode()
    assert str(letters[1].public_id) not in page.split('id="plan-preview"')[1]
    # The request form posts to the plan page with the ids, not back to the list.
    assert f'action="{PLAN}"' in page
    ids = "\n".join(str(letter.public_id) for letter in (letters[0], letters[2]))
    client.post(PLAN, {"ids": ids, "replay-reason": "provider fixed"})
    replay = ReplayRequest.objects.get()
    assert {item.dead_letter_id for item in replay.items.all()} == {letters[0].pk, letters[2].pk}


def test_the_action_is_only_for_operators(dead_letter):
    letter = dead_letter()
    approver = create_staff_user("abel", roles=["approvers"])
    client = verified_client(approver)
    assert "plan_replay_of_selected" not in client.get(LIST).content.decode()
    response = client.post(
        LIST, {"action": "plan_replay_of_selected", "_selected_action": [letter.pk]}
    )
    # The admin ignores an action it does not offer: the list again, no plan.
    assert 'id="plan-preview"' not in response.content.decode()
    assert ReplayRequest.objects.count() == 0


def test_the_plan_says_which_chosen_letters_it_leaves_out_and_why(dead_letter, operator):
    open_letter, taken = dead_letter(key="a"), dead_letter(key="b")
    client = verified_client(operator)
    client.post(PLAN, {"ids": str(taken.public_id), "replay-reason": "first request"})
    unknown = uuid.uuid4()
    response = client.get(f"{PLAN}?ids={open_letter.public_id},{taken.public_id},{unknown}")
    assert plan_count(response) == 1
    left_out = response.content.decode().split('id="plan-left-out"')[1]
    assert "already in pending replay request" in left_out
    assert f"{unknown}</span>: no such dead letter" in left_out


def test_ids_are_validated():
    with pytest.raises(InvalidRequest, match="not a dead letter id"):
        ReplayFilters.parse(dead_letter_ids="nope")
    too_many = " ".join(str(uuid.uuid4()) for _ in range(MAX_PLAN_IDS + 1))
    with pytest.raises(InvalidRequest, match=f"at most {MAX_PLAN_IDS}"):
        ReplayFilters.parse(dead_letter_ids=too_many)
    key = uuid.uuid4()
    parsed = ReplayFilters.parse(dead_letter_ids=f"{key}, {key}\n")
    assert parsed.dead_letter_ids == (key,)
    assert ReplayFilters.from_json(parsed.to_json()) == parsed
    assert parsed.describe() == "1 chosen dead letter"


def test_a_bad_id_is_an_error_on_the_plan_field(operator):
    response = verified_client(operator).get(f"{PLAN}?ids=not-a-uuid")
    assert "is not a dead letter id" in response.content.decode()
    assert 'id="plan-preview"' not in response.content.decode()


def test_the_request_page_says_in_words_how_the_letters_were_chosen():
    from deadletters.filters import describe_stored_filters

    assert describe_stored_filters({}) == "dead letters named by id"
    assert (
        describe_stored_filters({"reason": "gateway_rejected", "tenant_id": 3, "tenant": "acme"})
        == "reason=gateway_rejected, tenant=acme"
    )
    assert describe_stored_filters({"dead_letters": ["a", "b"]}) == "2 chosen dead letters"


def test_plan_a_replay_from_the_list_carries_its_filters(dead_letter, operator, tenant):
    from tests.deadletters.conftest import TRANSIENT

    dead_letter(key="rejected")
    exhausted = dead_letter(TRANSIENT, key="exhausted")
    client = verified_client(operator)
    page = client.get(
        f"{LIST}?reason_code__exact=attempts_exhausted&tenant__id__exact={tenant.pk}"
    ).content.decode()
    link = page.split('id="plan-replay" href="')[1].split('"')[0].replace("&amp;", "&")
    assert link == (f"{PLAN}?reason=attempts_exhausted&tenant={tenant.pk}&preview=1")
    assert "Plan a replay of this list" in page
    preview = client.get(link)
    assert plan_count(preview) == 1
    assert str(exhausted.public_id) in preview.content.decode()
    unfiltered = client.get(LIST).content.decode()
    assert f'id="plan-replay" href="{PLAN}"' in unfiltered
