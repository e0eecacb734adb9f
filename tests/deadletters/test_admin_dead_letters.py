"""The dead-letter screens: roles, tenant scope, detail page, evidence, assign, close."""

from __future__ import annotations

import hashlib
from typing import Any, cast

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from deadletters.models import DeadLetter, DeadLetterStatus, Evidence, EvidenceKind
from deadletters.services import evidence_add_file
from portal.audit.models import AuditEvent
from tests.accounts.factories import (
    create_staff_user,
    staff_client,
    verified_client,
)

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/deadletters/deadletter/"


def detail_url(dead_letter: DeadLetter) -> str:
    return f"{CHANGELIST}{dead_letter.pk}/change/"


def act_url(dead_letter: DeadLetter, action: str) -> str:
    return f"{CHANGELIST}{dead_letter.pk}/act/{action}/"


def download_url(evidence: Evidence) -> str:
    return f"{CHANGELIST}evidence/{evidence.pk}/download/"


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


@pytest.mark.parametrize("role", ["operators", "approvers", "auditors"])
def test_list_and_detail_open_for_the_reviewing_roles(role, dead_letter):
    letter = dead_letter()
    client = staff_client("staff", [role])
    listing = client.get(CHANGELIST)
    assert listing.status_code == 200
    assert str(letter.public_id) in listing.content.decode()
    page = client.get(detail_url(letter))
    assert page.status_code == 200
    content = page.content.decode()
    assert str(letter.intent.public_id) in content  # the intent, linked
    assert f"/admin/intents/intent/{letter.intent_id}/change/" in content
    assert 'id="attempt-timeline"' in content
    assert ">rejected_permanent</td>" in content
    assert 'id="history"' in content
    assert 'id="evidence"' in content
    # Only operators get the forms.
    assert ('id="dead-letter-actions"' in content) == (role == "operators")


@pytest.mark.parametrize("roles", [[], ["platform_admins"]])
def test_other_staff_are_refused(roles, dead_letter):
    letter = dead_letter()
    client = staff_client("other", roles)
    assert client.get(CHANGELIST).status_code == 403
    assert client.get(detail_url(letter)).status_code == 403
    assert client.post(act_url(letter, "note"), {"text": "hi"}).status_code == 403
    assert not Evidence.objects.exists()


def test_nobody_edits_or_deletes_through_the_admin_forms(dead_letter):
    letter = dead_letter()
    client = staff_client("root", superuser=True)
    assert client.get(f"{CHANGELIST}add/").status_code == 403
    assert client.get(f"{CHANGELIST}{letter.pk}/delete/").status_code == 403
    assert client.post(detail_url(letter), {"status": "resolved"}).status_code == 403
    letter.refresh_from_db()
    assert letter.status == DeadLetterStatus.OPEN
    # Evidence has no admin page at all: no list, no edit, no delete.
    assert client.get("/admin/deadletters/evidence/").status_code == 404


def test_filters_and_search(dead_letter, submit):
    from tests.deadletters.conftest import TRANSIENT

    rejected = dead_letter(key="order-1")
    exhausted = dead_letter(TRANSIENT, key="order-2")
    client = staff_client("olivia", ["operators"])

    def listed(query: str) -> set[str]:
        content = client.get(f"{CHANGELIST}?{query}").content.decode()
        return {
            name
            for name, letter in (("rejected", rejected), ("exhausted", exhausted))
            if str(letter.public_id) in content
        }

    assert listed("") == {"rejected", "exhausted"}
    assert listed("reason_code=attempts_exhausted") == {"exhausted"}
    assert listed("status__exact=open") == {"rejected", "exhausted"}
    assert listed("status__exact=resolved") == set()
    assert listed(f"tenant__id__exact={rejected.tenant_id}") == {"rejected", "exhausted"}
    assert listed("target_key=push.alert") == set()
    assert listed(f"q={rejected.public_id}") == {"rejected"}
    assert listed(f"q={exhausted.intent.public_id}") == {"exhausted"}  # the intent's id
    assert listed("q=order-2") == {"exhausted"}


def test_operators_see_and_act_only_within_their_tenants(
    dead_letter, other_tenant, tenant, media_root
):
    own = dead_letter(key="ours")
    foreign = dead_letter(key="theirs", tenant_=other_tenant)
    outsider, _ = create_staff_user("otto", roles=["operators"])
    foreign_file = evidence_add_file(
        dead_letter=foreign,
        actor=outsider,
        upload=SimpleUploadedFile("trace.log", b"trace\n"),
    )
    client = staff_client("scoped", ["operators"], tenants=[tenant])
    listing = client.get(CHANGELIST).content.decode()
    assert str(own.public_id) in listing
    assert str(foreign.public_id) not in listing
    assert other_tenant.name not in listing  # not even offered as a filter
    response = client.get(detail_url(foreign))
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.post(act_url(foreign, "note"), {"text": "peek"}).status_code == 404
    assert client.get(download_url(foreign_file)).status_code == 404
    assert Evidence.objects.filter(dead_letter=foreign).count() == 1


def test_notes_and_links_are_added_through_the_services(dead_letter):
    letter = dead_letter()
    client = staff_client("olivia", ["operators"])
    response = client.post(act_url(letter, "note"), {"text": "Gateway had an outage."}, follow=True)
    assert messages_of(response) == ["Note added."]
    response = client.post(
        act_url(letter, "link"),
        {"url": "https://tickets.example.com/INC-42", "title": "incident"},
        follow=True,
    )
    assert messages_of(response) == ["Link added."]
    assert list(Evidence.objects.values_list("kind", flat=True)) == ["note", "link"]
    content = response.content.decode()
    assert "Gateway had an outage." in content
    assert "https://tickets.example.com/INC-42" in content
    # The history shows both, from the audit chain.
    history = content.split('id="history"')[1]
    assert history.count("evidence.added") == 2
    assert AuditEvent.objects.filter(action="evidence.added").count() == 2


def test_a_bad_link_or_empty_note_is_refused_with_a_message(dead_letter):
    letter = dead_letter()
    client = staff_client("olivia", ["operators"])
    response = client.post(act_url(letter, "link"), {"url": "javascript:alert(1)"}, follow=True)
    assert any("Link:" in text for text in messages_of(response))
    response = client.post(act_url(letter, "note"), {"text": ""}, follow=True)
    assert messages_of(response) == ["Note: This field is required."]
    assert not Evidence.objects.exists()


def test_state_changes_need_post(dead_letter):
    letter = dead_letter()
    client = staff_client("olivia", ["operators"])
    assert client.get(act_url(letter, "note")).status_code == 405
    assert client.post(act_url(letter, "nonsense"), {}).status_code == 404


def test_posts_without_a_csrf_token_are_refused(dead_letter):
    letter = dead_letter()
    user = create_staff_user("olivia", roles=["operators"])
    client = verified_client(user, enforce_csrf_checks=True)
    assert client.post(act_url(letter, "note"), {"text": "no token"}).status_code == 403
    assert not Evidence.objects.exists()


def test_file_evidence_is_stored_and_downloaded_only_as_an_attachment(
    dead_letter, media_root, tenant
):
    letter = dead_letter()
    content = b"2026-01-05 12:00:00 gateway 400 bad number\n"
    client = staff_client("olivia", ["operators"])
    upload = SimpleUploadedFile("gateway trace.log", content, content_type="text/html")
    response = client.post(act_url(letter, "file"), {"file": upload}, follow=True)
    (text,) = messages_of(response)
    assert text.startswith("File gateway trace.log added")
    evidence = Evidence.objects.get()
    assert evidence.kind == EvidenceKind.FILE
    assert evidence.sha256 == hashlib.sha256(content).hexdigest()
    assert evidence.size == len(content)
    assert evidence.content_type == "text/plain; charset=utf-8"  # ours, not the client's
    stored = media_root / evidence.file.name
    assert stored.read_bytes() == content
    assert download_url(evidence) in response.content.decode()

    download = client.get(download_url(evidence))
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment;")
    assert "gateway trace.log" in download["Content-Disposition"]
    assert download["Content-Type"] == "text/plain; charset=utf-8"
    assert download["X-Content-Type-Options"] == "nosniff"
    # The test client's response type lacks FileResponse's streaming_content (sync under WSGI).
    assert b"".join(cast(Any, download).streaming_content) == content

    # Staff only: a reviewing role may download; a session without the second factor,
    # or staff without a reviewing role, may not.
    assert staff_client("ada", ["auditors"]).get(download_url(evidence)).status_code == 200
    assert staff_client("pat", ["platform_admins"]).get(download_url(evidence)).status_code == 403
    anonymous = Client().get(download_url(evidence))
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/admin/login/")
    # The storage is not served: the stored name answers nothing outside the view.
    assert Client().get(f"/{evidence.file.name}").status_code == 404
    assert Client().get(f"/media/{evidence.file.name}").status_code == 404


def test_every_evidence_download_is_audited_and_a_refused_one_is_not(dead_letter, media_root):
    letter = dead_letter()
    olivia = create_staff_user("olivia", roles=["operators"])
    evidence = evidence_add_file(
        dead_letter=letter,
        actor=olivia[0],
        upload=SimpleUploadedFile("trace.log", b"gateway said 400\n"),
    )
    downloads = AuditEvent.objects.filter(action="evidence.downloaded")

    response = verified_client(olivia).get(download_url(evidence), REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 200
    assert staff_client("ada", ["auditors"]).get(download_url(evidence)).status_code == 200
    assert [(e.actor_label, e.object_id, e.data) for e in downloads.order_by("sequence")] == [
        (
            name,
            str(letter.public_id),
            {"evidence_id": evidence.pk, "name": "trace.log", "sha256": evidence.sha256},
        )
        for name in ("olivia", "ada")
    ]
    first = downloads.first()
    assert first is not None
    assert first.ip_address == "10.1.2.3"

    # Refused (no reviewing role) or gone from storage: nothing was read, nothing recorded.
    assert staff_client("pat", ["platform_admins"]).get(download_url(evidence)).status_code == 403
    (media_root / evidence.file.name).unlink()
    assert verified_client(olivia).get(download_url(evidence)).status_code == 404
    assert downloads.count() == 2


def test_a_disguised_file_is_refused_and_nothing_is_stored(dead_letter, media_root):
    letter = dead_letter()
    client = staff_client("olivia", ["operators"])
    upload = SimpleUploadedFile("report.pdf", b"MZ\x90\x00\x03 not a pdf")
    response = client.post(act_url(letter, "file"), {"file": upload}, follow=True)
    (text,) = messages_of(response)
    assert "it was not accepted" in text
    assert not Evidence.objects.exists()
    assert not any(path.is_file() for path in media_root.rglob("*"))


def test_assign_then_resolve(dead_letter):
    letter = dead_letter()
    colleague, _ = create_staff_user("carla", roles=["operators"])
    client = staff_client("olivia", ["operators"])
    response = client.post(act_url(letter, "assign"), {"assignee": colleague.pk}, follow=True)
    assert messages_of(response) == ["Assigned to carla."]
    letter.refresh_from_db()
    assert letter.assignee == colleague

    response = client.post(
        act_url(letter, "close"), {"outcome": "resolve", "reason": "sent by hand"}, follow=True
    )
    assert messages_of(response) == [f"Dead letter {letter.public_id} is resolved."]
    letter.refresh_from_db()
    assert letter.status == DeadLetterStatus.RESOLVED
    content = response.content.decode()
    assert "dead_letter.resolved" in content.split('id="history"')[1]
    # Settled: the page offers neither assigning nor closing any more.
    assert "/act/assign/" not in content
    assert "/act/close/" not in content
    # And the service refuses a second close with a message.
    response = client.post(
        act_url(letter, "close"), {"outcome": "discard", "reason": "again"}, follow=True
    )
    (text,) = messages_of(response)
    assert "Only open dead letters can be discarded" in text
    letter.refresh_from_db()
    assert letter.status == DeadLetterStatus.RESOLVED


def test_discard_needs_a_reason(dead_letter):
    letter = dead_letter()
    client = staff_client("olivia", ["operators"])
    response = client.post(act_url(letter, "close"), {"outcome": "discard"}, follow=True)
    assert messages_of(response) == ["Why: This field is required."]
    response = client.post(
        act_url(letter, "close"), {"outcome": "discard", "reason": "test data"}, follow=True
    )
    letter.refresh_from_db()
    assert letter.status == DeadLetterStatus.DISCARDED


def test_approvers_and_auditors_cannot_act(dead_letter):
    letter = dead_letter()
    for username, role in (("abby", "approvers"), ("ada", "auditors")):
        client = staff_client(username, [role])
        assert client.post(act_url(letter, "note"), {"text": "x"}).status_code == 403
        assert (
            client.post(act_url(letter, "close"), {"outcome": "discard", "reason": "x"}).status_code
            == 403
        )
    letter.refresh_from_db()
    assert letter.status == DeadLetterStatus.OPEN
    assert not Evidence.objects.exists()


def test_the_list_does_not_query_per_row(dead_letter):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    dead_letter(key="first")
    user_and_device = create_staff_user("olivia", roles=["operators"])
    client = verified_client(user_and_device)
    with CaptureQueriesContext(connection) as one:
        assert client.get(CHANGELIST).status_code == 200
    more = [dead_letter(key=f"more-{i}") for i in range(3)]
    for letter in more:  # assignees are shown in the list too
        client.post(act_url(letter, "assign"), {"assignee": user_and_device[0].pk})
    with CaptureQueriesContext(connection) as four:
        response = client.get(CHANGELIST)
    content = response.content.decode()
    assert all(str(letter.public_id) in content for letter in more)
    assert content.count(">olivia</td>") == 3
    assert len(four) == len(one)
