"""``manage.py replay plan|request|approve|reject`` (CONTRACT.md, "Management commands")."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command

from deadletters.models import DeadLetterStatus, ReplayRequest, ReplayStatus
from portal.audit.models import AuditEvent
from tests.accounts.factories import create_staff_user, totp_code

from .conftest import REJECTED, TRANSIENT

pytestmark = pytest.mark.django_db


def replay(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("replay", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().splitlines()


def refused(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        replay(*args)
    message = str(caught.value)
    assert message and "\n" not in message  # one line
    return message


def reload(obj):
    obj.refresh_from_db()
    return obj


def test_plan_prints_each_match_and_the_count(dead_letter, other_tenant):
    rejected = [dead_letter(REJECTED), dead_letter(REJECTED, tenant_=other_tenant)]
    dead_letter(TRANSIENT)
    lines = replay("plan", "--reason", "gateway_rejected")
    assert lines[-1] == "2 open dead letter(s) match reason=gateway_rejected"
    rows = lines[:-1]
    assert len(rows) == 2
    for row, dl in zip(rows, rejected, strict=True):
        assert row.startswith(str(dl.public_id))
        assert dl.tenant.name in row
        assert "sms.fast" in row
        assert str(dl.intent.public_id) in row
    lines = replay("plan", "--reason", "gateway_rejected", "--tenant", "globex")
    assert lines[-1] == "1 open dead letter(s) match reason=gateway_rejected, tenant=globex"
    assert lines[0].startswith(str(rejected[1].public_id))


def test_plan_with_a_limit_says_how_many_more(dead_letter):
    for _ in range(3):
        dead_letter(REJECTED)
    lines = replay("plan", "--reason", "gateway_rejected", "--limit", "1")
    assert lines[1:] == ["… and 2 more", "3 open dead letter(s) match reason=gateway_rejected"]


def test_plan_filters_by_target_and_since(dead_letter, frozen_clock):
    dead_letter(REJECTED)  # sms.fast, at the start
    otp_early = dead_letter(REJECTED, target="sms.otp")
    frozen_clock.advance(3600)
    otp_late = dead_letter(REJECTED, target="sms.otp")
    lines = replay("plan", "--reason", "gateway_rejected", "--target", "sms.otp")
    assert lines[-1].startswith("2 open dead letter(s) match")
    assert {line.split()[0] for line in lines[:-1]} == {
        str(otp_early.public_id),
        str(otp_late.public_id),
    }
    since = (otp_late.created_at - dt.timedelta(minutes=30)).isoformat()
    lines = replay("plan", "--reason", "gateway_rejected", "--target", "sms.otp", "--since", since)
    assert lines[-1].startswith("1 open dead letter(s) match")
    assert lines[0].startswith(str(otp_late.public_id))


def test_plan_needs_a_known_reason(db):
    assert "needs --reason (a dead-letter reason code) or --dead-letters" in refused(
        "plan", "--target", "sms.fast"
    )
    assert "Unknown dead-letter reason" in refused("plan", "--reason", "bogus")
    assert "ISO 8601" in refused("plan", "--reason", "gateway_rejected", "--since", "soon")


def test_request_prints_the_request_id_alone_on_the_last_line(dead_letter, operator):
    dls = [dead_letter(), dead_letter()]
    lines = replay(
        "request",
        "--user",
        "olga",
        "--reason",
        "gateway fixed",
        "--dead-letters",
        ",".join(str(dl.public_id) for dl in dls),
    )
    request = ReplayRequest.objects.get()
    assert lines[-1] == str(request.public_id)
    assert "2 dead letter(s)" in lines[0]
    assert request.requested_by == operator[0]
    assert {reload(dl).status for dl in dls} == {DeadLetterStatus.REPLAY_PENDING}


def test_request_by_filters(dead_letter, operator):
    dl = dead_letter(REJECTED)
    dead_letter(TRANSIENT)
    lines = replay(
        "request", "--user", "olga", "--reason", "retry", "--reason-code", "gateway_rejected"
    )
    request = ReplayRequest.objects.get(public_id=lines[-1])
    assert list(request.items.values_list("dead_letter_id", flat=True)) == [dl.pk]


def test_request_refusals(dead_letter, operator):
    dl = dead_letter()
    create_staff_user("abel", roles=["approvers"])
    assert "operators role" in refused(
        "request", "--user", "abel", "--reason", "x", "--dead-letters", str(dl.public_id)
    )
    assert "No active staff user" in refused(
        "request", "--user", "ghost", "--reason", "x", "--dead-letters", str(dl.public_id)
    )
    assert "reason is required" in refused(
        "request", "--user", "olga", "--reason", " ", "--dead-letters", str(dl.public_id)
    )
    assert "at least one filter" in refused("request", "--user", "olga", "--reason", "x")
    assert "not both" in refused(
        "request",
        "--user",
        "olga",
        "--reason",
        "x",
        "--dead-letters",
        str(dl.public_id),
        "--target",
        "sms.fast",
    )
    assert not ReplayRequest.objects.exists()


@pytest.fixture
def requested(dead_letter, operator):
    """A pending request by olga, made through the command; returns its public id."""
    dl = dead_letter()
    return replay(
        "request", "--user", "olga", "--reason", "fixed", "--dead-letters", str(dl.public_id)
    )[-1]


def test_approve_of_ones_own_request_is_refused(traveller, dead_letter):
    _both, device = create_staff_user("bob", roles=["operators", "approvers"])
    dl = dead_letter()
    request_id = replay(
        "request", "--user", "bob", "--reason", "mine", "--dead-letters", str(dl.public_id)
    )[-1]
    message = refused("approve", request_id, "--user", "bob", "--otp", totp_code(device))
    assert "You requested this replay" in message
    assert ReplayRequest.objects.get(public_id=request_id).status == ReplayStatus.PENDING


# The extra arguments each decision needs besides the code.
DECISION_ARGS = {"approve": (), "reject": ("--reason", "not yet")}


@pytest.mark.parametrize("decision", DECISION_ARGS)
def test_a_decision_by_a_non_approver_is_refused(traveller, requested, decision):
    _user, device = create_staff_user("otto", roles=["operators"])
    message = refused(
        decision, requested, "--user", "otto", "--otp", totp_code(device), *DECISION_ARGS[decision]
    )
    assert "needs the approvers role" in message
    assert ReplayRequest.objects.get(public_id=requested).status == ReplayStatus.PENDING


@pytest.mark.parametrize("decision", DECISION_ARGS)
def test_a_decision_with_a_wrong_code_is_refused(traveller, requested, approver, decision):
    _user, device = approver
    good = totp_code(device)
    bad = f"{(int(good) + 1) % 1_000_000:06d}"
    message = refused(decision, requested, "--user", "abel", "--otp", bad, *DECISION_ARGS[decision])
    assert "wrong or was already used" in message
    assert ReplayRequest.objects.get(public_id=requested).status == ReplayStatus.PENDING
    assert AuditEvent.objects.filter(action="otp.step_up_failed").count() == 1


def test_approve_with_a_fresh_code_works_and_a_reused_one_does_not(
    traveller, requested, approver, dead_letter, django_capture_on_commit_callbacks
):
    _user, device = approver
    code = totp_code(device)
    with django_capture_on_commit_callbacks(execute=True):
        lines = replay("approve", requested, "--user", "abel", "--otp", code)
    assert lines == [f"approved replay request {requested}; execution queued"]
    request = ReplayRequest.objects.get(public_id=requested)
    assert request.status == ReplayStatus.DONE  # the queued execution ran on commit
    assert request.decided_by is not None
    assert request.decided_by.username == "abel"
    assert reload(request.items.get().dead_letter).status == DeadLetterStatus.REPLAYED
    # The same code cannot decide a second request.
    dl = dead_letter()
    second = replay(
        "request", "--user", "olga", "--reason", "more", "--dead-letters", str(dl.public_id)
    )[-1]
    traveller.shift(3)
    assert "already used" in refused("approve", second, "--user", "abel", "--otp", code)


def test_unknown_request_id_is_refused(traveller, approver):
    assert "No replay request" in refused("approve", "nope", "--user", "abel", "--otp", "123456")


def test_reject_needs_a_reason(traveller, requested, approver):
    _user, device = approver
    message = refused("reject", requested, "--user", "abel", "--otp", totp_code(device))
    assert "--reason" in message
    assert "reason for the rejection is required" in refused(
        "reject", requested, "--user", "abel", "--otp", totp_code(device), "--reason", "  "
    )
    assert ReplayRequest.objects.get(public_id=requested).status == ReplayStatus.PENDING
    lines = replay(
        "reject", requested, "--user", "abel", "--otp", totp_code(device), "--reason", "still down"
    )
    assert lines == [f"rejected replay request {requested}"]
    request = ReplayRequest.objects.get(public_id=requested)
    assert (request.status, request.decision_reason) == (ReplayStatus.REJECTED, "still down")
    assert reload(request.items.get().dead_letter).status == DeadLetterStatus.OPEN
    assert AuditEvent.objects.filter(action="replay.rejected").count() == 1


def test_reject_by_the_requester_is_refused(traveller, dead_letter):
    _both, device = create_staff_user("bob", roles=["operators", "approvers"])
    request_id = replay(
        "request", "--user", "bob", "--reason", "m", "--dead-letters", str(dead_letter().public_id)
    )[-1]
    message = refused(
        "reject", request_id, "--user", "bob", "--otp", totp_code(device), "--reason", "no"
    )
    assert "You requested this replay" in message


def test_whole_flow_from_the_shell_leaves_an_intact_audit_trail(
    frozen_clock,
    traveller,
    scripted,
    dead_lettered,
    operator,
    approver,
    django_capture_on_commit_callbacks,
):
    from intents.dispatch import run_once
    from intents.models import IntentStatus

    from .conftest import FLAKY_5

    intent = dead_lettered(FLAKY_5)
    plan = replay("plan", "--reason", "attempts_exhausted")
    assert plan[-1].startswith("1 open dead letter(s)")
    dead_letter_id = plan[0].split()[0]
    request_id = replay(
        "request", "--user", "olga", "--reason", "provider fixed", "--dead-letters", dead_letter_id
    )[-1]
    with django_capture_on_commit_callbacks(execute=True):
        replay("approve", request_id, "--user", "abel", "--otp", totp_code(approver[1]))
    for _ in range(3):
        run_once()
        frozen_clock.advance(1)
    intent = reload(intent)
    assert (intent.status, intent.generation) == (IntentStatus.ACCEPTED, 2)
    trail = list(
        AuditEvent.objects.filter(object_id=request_id)
        .order_by("sequence")
        .values_list("action", "actor_label")
    )
    assert trail == [
        ("replay.requested", "olga"),
        ("replay.approved", "abel"),
        ("replay.executed", "replay_execute"),
    ]
    assert audit_verify_output().startswith("OK:")


def audit_verify_output() -> str:
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    return out.getvalue()


def test_plan_of_chosen_dead_letters_says_which_it_leaves_out(dead_letter, operator):
    from deadletters.services import replay_request_create

    chosen, taken = dead_letter(REJECTED), dead_letter(REJECTED)
    replay_request_create(
        requested_by=operator[0], reason="first", dead_letter_ids=[taken.public_id]
    )
    lines = replay("plan", "--dead-letters", f"{chosen.public_id},{taken.public_id}")
    assert lines[0].startswith(str(chosen.public_id))
    assert lines[1].startswith(f"{taken.public_id}  left out: already in pending replay request")
    assert lines[-1] == "1 open dead letter(s) match 2 chosen dead letters"
    assert "is not a dead letter id" in refused("plan", "--dead-letters", "nope")


def test_plan_help_names_every_dead_letter_reason(capsys):
    from deadletters.models import DEAD_LETTER_REASONS

    with pytest.raises(SystemExit):
        call_command("replay", "plan", "--help")
    flat = " ".join(capsys.readouterr().out.split())
    assert all(reason.value in flat for reason in DEAD_LETTER_REASONS)
    assert "outcome_unknown" in flat
