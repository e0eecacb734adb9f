"""The operations dashboard: verified staff only; its charts are inline SVG with no script
and no external URL, and every number on it is what the database says."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser

import pytest

from intents.models import Attempt
from portal.observability import selectors
from tests.accounts.factories import create_staff_user, verified_login

from .conftest import PUSH_CONTRACT, SMS_CONTRACT

URL = "/admin/operations/"


class Page(HTMLParser):
    """Tags, the SVG titles (bar tooltips), and table rows as lists of cell texts."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.svg_titles: list[str] = []
        self.rows: list[list[str]] = []
        self.script_bodies: list[str] = []
        self._svg_depth = 0
        self._in: str | None = None
        self._text = ""
        self._row: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "svg":
            self._svg_depth += 1
        elif tag == "tr":
            self._row = []
        if tag in ("title", "td", "th", "script"):
            self._in, self._text = tag, ""

    def handle_endtag(self, tag):
        if tag == "svg":
            self._svg_depth -= 1
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        elif tag == self._in:
            text = " ".join(self._text.split())
            if tag == "title" and self._svg_depth:
                self.svg_titles.append(text)
            elif tag in ("td", "th") and self._row is not None:
                self._row.append(text)
            elif tag == "script":
                self.script_bodies.append(text)
            self._in = None

    def handle_data(self, data):
        if self._in:
            self._text += data

    def row(self, first_cell: str, cells: int) -> list[str]:
        """The one row of ``cells`` cells that starts with ``first_cell``."""
        (found,) = [r for r in self.rows if len(r) == cells and r[0] == first_cell]
        return found


@pytest.fixture
def staff(client, db):
    user, device = create_staff_user("olga", roles=["operators"])
    verified_login(client, user, device)
    return client


@pytest.fixture
def scripted(rows):
    """Attempts, dead letters and intents at known times in and out of a 24 h window.

    The frozen clock stands at 12:00 UTC, so the window runs from 12:00 the day before.
    """
    made = {}

    def accepted(contract, *, created_ago_h, took_s):
        created = rows.ago(hours=created_ago_h)
        return rows.intent(
            contract=contract,
            status="accepted",
            created_at=created,
            finished_at=created + dt.timedelta(seconds=took_s),
            attempts_count=1,
            reason_code="gateway_accepted",
        )

    # sms.otp: objective 600 s
    made["fast"] = accepted(SMS_CONTRACT, created_ago_h=3, took_s=30)
    made["slow"] = accepted(SMS_CONTRACT, created_ago_h=3, took_s=700)
    made["exhausted"] = rows.intent(
        status="exhausted",
        created_at=rows.ago(hours=2),
        finished_at=rows.ago(hours=1),
        attempts_count=3,
        reason_code="attempts_exhausted",
    )
    made["cancelled"] = rows.intent(
        status="cancelled",
        created_at=rows.ago(hours=2),
        finished_at=rows.ago(hours=2),
        reason_code="cancelled_by_client",
    )
    made["open"] = rows.intent(created_at=rows.ago(hours=1), next_attempt_at=rows.ago(seconds=30))
    # Submitted before the window, accepted inside it: not in the SLA of this window.
    made["old"] = accepted(SMS_CONTRACT, created_ago_h=30, took_s=30 * 3600 - 3600)
    # push.alert: objective 60 s
    made["push"] = accepted(PUSH_CONTRACT, created_ago_h=5, took_s=10)

    # Attempts: sms 10:xx 3 accepted, 11:xx 2 timeout; one outside; push 07:xx 1 accepted.
    for intent in (made["fast"], made["slow"], made["old"]):
        rows.attempt(intent, outcome="accepted", finished_at=rows.ago(hours=1, minutes=30))
    for n in (1, 2):
        rows.attempt(
            made["exhausted"], outcome="timeout", finished_at=rows.ago(minutes=10 + n), number=n
        )
    rows.attempt(made["exhausted"], outcome="rejected_permanent", finished_at=rows.ago(hours=30))
    rows.attempt(made["push"], outcome="accepted", finished_at=rows.ago(hours=4, minutes=59))

    rows.dead_letter(made["exhausted"], reason_code="attempts_exhausted")
    other = rows.intent(status="failed", finished_at=rows.ago(hours=6), reason_code="x")
    rows.dead_letter(other, reason_code="gateway_rejected", created_at=rows.ago(hours=6))
    third = rows.intent(status="exhausted", finished_at=rows.ago(hours=7))
    rows.dead_letter(third, reason_code="attempts_exhausted", created_at=rows.ago(hours=7))
    ancient = rows.intent(status="expired", finished_at=rows.ago(days=3))
    rows.dead_letter(ancient, reason_code="deadline_passed", created_at=rows.ago(days=3))
    return made


def test_refused_to_anonymous_and_non_staff(client, db):
    anonymous = client.get(URL)
    assert anonymous.status_code == 302
    assert "/admin/login/" in anonymous["Location"]

    from django.contrib.auth import get_user_model

    plain = get_user_model().objects.create_user("pat", password="x" * 20)
    client.force_login(plain)
    response = client.get(URL)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_refused_to_staff_without_a_verified_device(client, db):
    user, _ = create_staff_user("ned")
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    response = client.get(URL)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert b"<svg" not in response.content


def test_direct_call_still_refuses_unverified_staff(rf, db):
    from django.core.exceptions import PermissionDenied

    from portal.observability.views import operations_dashboard

    user, _ = create_staff_user("sam")
    request = rf.get(URL)
    request.user = user
    user.is_verified = lambda: False
    with pytest.raises(PermissionDenied):
        operations_dashboard(request)


def test_charts_are_inline_svg_without_script_or_external_url(staff, scripted):
    response = staff.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    page = Page(html)
    assert sum(1 for tag, _ in page.tags if tag == "svg" and _.get("role") == "img") >= 4
    for tag, attrs in page.tags:
        if tag == "script":
            assert attrs.get("src"), "inline <script> on the dashboard"
        for name in ("src", "href", "xlink:href", "action"):
            value = attrs.get(name) or ""
            assert not re.match(r"(?i)^(https?:)?//", value), (tag, name, value)
    assert all(not body for body in page.script_bodies)
    assert " on" not in "".join(  # no inline event handlers either
        f" {name}" for _, attrs in page.tags for name in attrs if name.startswith("on")
    )
    assert "Content-Security-Policy" in response.headers
    script_src = re.search(r"script-src[^;]*", response.headers["Content-Security-Policy"])
    assert script_src is not None
    assert "'unsafe-inline'" not in script_src.group(0)


def test_numbers_match_the_database(staff, scripted, rows):
    page = Page(staff.get(URL).content.decode())
    html_titles = page.svg_titles

    # Attempt outcomes per gateway and hour: bars carry "MM-DD HH:00: n outcome" (a date
    # on each: a 24-hour window starts and ends at the same hour of two days).
    assert "01-05 10:00: 3 accepted" in html_titles
    assert "01-05 11:00: 2 timeout" in html_titles
    assert "01-05 07:00: 1 accepted" in html_titles
    assert not any("rejected_permanent" in title for title in html_titles)  # outside window
    since = rows.ago(hours=24)
    in_window = Attempt.objects.filter(finished_at__gte=since, finished_at__lt=rows.now)
    sms = in_window.filter(intent__target_key="sms.otp")
    html = staff.get(URL).content.decode()
    assert f"sms: {sms.count()} attempts (accepted 3, timeout 2)" in " ".join(html.split())
    assert "push: 1 attempt (accepted 1)" in " ".join(html.split())

    # Dead letters created in the window, by reason.
    assert "attempts_exhausted: 2" in html_titles
    assert "gateway_rejected: 1" in html_titles
    assert not any(title.startswith("deadline_passed") for title in html_titles)

    # SLA: sms.otp 1 of 3 within 600 s (the cancelled one is out), 4 of 5 known.
    assert page.row("sms.otp", 9) == [
        "sms.otp", "10.0 min", "1", "3", "33.3 %", "5", "4", "1", "80.0 %",
    ]  # fmt: skip
    assert page.row("push.alert", 9) == [
        "push.alert", "60 s", "1", "1", "100.0 %", "1", "1", "0", "100.0 %",
    ]  # fmt: skip

    # Backlog tiles.
    text = " ".join(html.split())
    assert "<dt>Due, not claimed</dt><dd>1</dd>" in text
    assert "<dt>Open dead letters</dt><dd>4</dd>" in text

    # Latency table: the accepted intents finished in the window, all targets first.
    assert page.row("all targets", 4)[1] == "4"  # fast, slow, old, push
    assert page.row("sms.otp", 4)[1] == "3"
    assert page.row("push.alert", 4)[1:] == ["1", "7.50 s", "9.75 s"]  # interpolated in (5, 10]


def test_sla_selector_counts(rows, scripted):
    by_target = {
        row.target_key: row
        for row in selectors.sla_by_target(since=rows.ago(hours=24), until=rows.now)
    }
    sms = by_target["sms.otp"]
    assert (sms.numerator, sms.denominator, sms.submitted, sms.terminal, sms.cancelled) == (
        1,
        3,
        5,
        4,
        1,
    )
    assert sms.share == pytest.approx(1 / 3)
    assert sms.coverage == pytest.approx(0.8)
    assert by_target["push.alert"].objectives_s == (60.0,)


def test_window_parameter_is_clamped(staff, scripted):
    assert b"The last 6 hours" in staff.get(URL, {"hours": "6"}).content
    assert b"The last 168 hours" in staff.get(URL, {"hours": "100000"}).content
    assert b"The last 24 hours" in staff.get(URL, {"hours": "nonsense"}).content
    six = Page(staff.get(URL, {"hours": "6"}).content.decode())
    assert "attempts_exhausted: 1" in six.svg_titles  # the 7 h old one is out


def test_dashboard_queries_stay_bounded(staff, scripted, django_assert_max_num_queries):
    with django_assert_max_num_queries(30):
        assert staff.get(URL).status_code == 200


def test_stale_heartbeats_are_marked_and_timed_out_intents_linked(staff, scripted, rows):
    from portal.observability.models import WorkerHeartbeat

    WorkerHeartbeat.objects.create(worker_id="live-1", kind="worker", seen_at=rows.ago(seconds=5))
    WorkerHeartbeat.objects.create(
        worker_id="gone-1", kind="dispatcher", seen_at=rows.ago(minutes=10)
    )
    html = staff.get(URL).content.decode()
    rows_html = {
        worker: next(row for row in html.split("<tr") if f">{worker}<" in row)
        for worker in ("live-1", "gone-1")
    }
    assert "stale" not in rows_html["live-1"]
    assert "stale: stopped or hung" in rows_html["gone-1"]
    retrying = rows.intent(
        created_at=rows.ago(minutes=5), next_attempt_at=rows.ago(seconds=1), attempts_count=1
    )
    rows.attempt(retrying, outcome="timeout", finished_at=rows.ago(minutes=1))
    reconcile = staff.get(URL).content.decode().split('id="reconcile"')[1]
    assert f'href="/admin/intents/intent/{retrying.pk}/change/"' in reconcile
