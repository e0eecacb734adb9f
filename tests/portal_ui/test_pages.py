"""The pages around the admin: landing page, favicon, error pages, logout, index counts."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from tests.accounts.factories import create_staff_user, staff_client, verified_login

pytestmark = pytest.mark.django_db


def test_the_landing_page_says_what_the_service_is_and_where_to_go():
    response = Client().get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "durable outbound-delivery service" in page
    for link in ('href="/admin/"', 'href="/api/v1/docs"', 'href="/healthz"', 'href="/readyz"'):
        assert link in page
    assert "Using the URLconf" not in page  # not Django's DEBUG 404 listing every URL


def test_the_favicon_is_served():
    response = Client().get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("portal/favicon.svg")


@override_settings(DEBUG=False)
def test_a_missing_page_is_styled_outside_the_api_and_problem_json_inside():
    response = Client().get("/nowhere")
    assert response.status_code == 404
    page = response.content.decode()
    assert "Page not found" in page and "<code>/nowhere</code>" in page
    assert "admin/css/base.css" in page
    api = Client().get("/api/nowhere")
    assert api.status_code == 404 and api["Content-Type"] == "application/problem+json"


def test_a_refused_page_is_styled_and_names_the_missing_role():
    auditor = staff_client("audrey", ["auditors"])
    response = auditor.get("/admin/deadletters/replayrequest/plan/")
    assert response.status_code == 403
    page = response.content.decode()
    assert "Not allowed" in page and "needs the operators or approvers role" in page
    assert "admin/css/base.css" in page


def test_the_500_page_renders_without_a_request():
    from django.template import loader

    page = loader.get_template("500.html").render()
    assert "Server error" in page and "admin/css/base.css" in page


def test_logout_shows_the_portals_page(client):
    user, device = create_staff_user("olga", roles=["operators"])
    verified_login(client, user, device)
    response = client.post("/admin/logout/")
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="logged-out"' in page
    assert "quality time" not in page


def test_the_index_counts_open_dead_letters_and_requests_awaiting_a_decision(
    dead_letter, operator, approver
):
    from deadletters.services import replay_request_create

    letters = [dead_letter(key=f"k{n}") for n in range(3)]
    replay_request_create(
        requested_by=operator[0], reason="fixed", dead_letter_ids=[letters[0].public_id]
    )
    client = Client()
    verified_login(client, *approver)
    page = client.get("/admin/").content.decode()
    assert 'id="open-dead-letters-count">2<' in page
    assert 'id="awaiting-decision-count">1<' in page
    operator_page = staff_client("oscar", ["operators"]).get("/admin/").content.decode()
    assert 'id="open-dead-letters-count">2<' in operator_page
    assert "awaiting-decision-count" not in operator_page


def test_a_link_without_a_scheme_is_accepted_and_the_history_reads_as_fields(dead_letter, operator):
    letter = dead_letter()
    client = Client()
    verified_login(client, *operator)
    page_url = f"/admin/deadletters/deadletter/{letter.pk}/change/"
    form = client.get(page_url).content.decode()
    assert 'type="url"' not in form  # the browser would refuse host/path before we see it
    client.post(
        f"/admin/deadletters/deadletter/{letter.pk}/act/link/",
        {"url": "tickets.example.com/INC-1", "title": "the incident"},
    )
    evidence = letter.evidence.get()
    assert evidence.url == "https://tickets.example.com/INC-1"
    history = client.get(page_url).content.decode().split('id="history"')[1]
    assert "<dt>url</dt><dd>https://tickets.example.com/INC-1</dd>" in history
    assert "{&quot;" not in history  # no raw JSON object
