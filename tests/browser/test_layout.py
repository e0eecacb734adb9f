"""Every list and detail page fits a 1366 x 768 laptop (and 1920 px) without horizontal
scrolling, shows short ids with the full id on hover, and one time format.

The data is made by the real engine (``run_once`` against the scripted in-process
gateway, off the browser's thread): accepted intents, permanent rejections and exhausted
budgets, a replay request and its audit trail, so every column holds real values.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from deadletters import services as deadletter_services
from deadletters.models import DeadLetter, ReplayRequest
from intents.dispatch import run_once
from intents.models import Intent
from portal import clock
from portal.audit.models import AuditEvent
from tests.accounts.factories import PASSWORD, create_staff_user
from tests.browser.helpers import assert_styled, fresh_code, log_in, shot
from tests.browser.test_replay_flow import off_the_browser_thread
from tests.engine.conftest import scripted, submit  # noqa: F401  (shared engine fixtures)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")
# Every element that could hold a too-wide table: the page itself, the admin's scrolling
# result box, modules and the portal's tables.
OVERFLOW_JS = """() => {
    const doc = document.documentElement;
    const wide = [];
    if (doc.scrollWidth > doc.clientWidth) wide.push(`page ${doc.scrollWidth} > ${doc.clientWidth}`);
    for (const el of document.querySelectorAll('#content .results, #content .module, #content table, #changelist')) {
        if (el.scrollWidth > el.clientWidth + 1) {
            wide.push(`${el.tagName}#${el.id}.${el.className} ${el.scrollWidth} > ${el.clientWidth}`);
        }
    }
    return wide;
}"""


@pytest.fixture
def engine_rows(tenant, targets, scripted, submit):  # noqa: F811
    """Intents of every fate, dead letters, and a pending replay request."""
    with clock.override(timezone.now() - dt.timedelta(minutes=5)) as engine_clock:
        for n in range(3):
            submit("+15550100001", key=f"order-{n}-accepted")
        for n in range(4):
            submit("+15550100400", key=f"order-{n}-rejected")
        for n in range(2):
            submit("+15550100503", key=f"order-{n}-exhausted")
        for _ in range(8):
            off_the_browser_thread(run_once)
            engine_clock.advance(2)
    olga, _ = create_staff_user("olga", roles=["operators"])
    first = DeadLetter.objects.order_by("id").first()
    assert first is not None
    deadletter_services.replay_request_create(
        requested_by=olga, reason="INC-1 fixed", dead_letter_ids=[first.public_id]
    )
    return {"intents": Intent.objects.count(), "dead_letters": DeadLetter.objects.count()}


def list_and_detail_paths() -> list[str]:
    intent = Intent.objects.order_by("id").first()
    dead_letter = DeadLetter.objects.order_by("id").first()
    replay = ReplayRequest.objects.get()
    event = AuditEvent.objects.order_by("-sequence").first()
    assert intent and dead_letter and event
    return [
        "/",
        "/admin/",
        "/admin/deadletters/deadletter/",
        f"/admin/deadletters/deadletter/{dead_letter.pk}/change/",
        "/admin/intents/intent/",
        f"/admin/intents/intent/{intent.pk}/change/",
        "/admin/deadletters/replayrequest/",
        f"/admin/deadletters/replayrequest/{replay.pk}/change/",
        "/admin/deadletters/replayrequest/plan/?reason=gateway_rejected",
        "/admin/deadletters/replayrequest/approvals/",
        "/admin/audit/auditevent/",
        f"/admin/audit/auditevent/{event.pk}/change/",
        "/admin/accounts/tenant/",
        "/admin/accounts/apikey/",
        f"/admin/accounts/tenant/{intent.tenant_id}/change/",
        "/admin/auth/user/",
        "/admin/operations/",
    ]


@pytest.mark.parametrize("width", [1366, 1920])
def test_every_screen_fits_the_laptop_width(chromium, live_server, engine_rows, width):
    _root, device = create_staff_user("root", superuser=True)
    context = chromium.new_context(
        base_url=live_server.url, viewport={"width": width, "height": 768}
    )
    try:
        page = context.new_page()
        page.foreign_requests = []
        log_in(page, "root", PASSWORD, fresh_code(device))
        page.wait_for_url("**/admin/")
        for path in list_and_detail_paths():
            page.goto(path)
            assert_styled(page)
            name = path.split("?")[0].strip("/").replace("/", "-") or "index"
            shot(page, f"layout-{width}-{name}")
            assert page.evaluate(OVERFLOW_JS) == [], path
            for cell in page.locator(
                "td.field-created_at, td.field-finished_at, td.field-occurred_at, "
                ".field-created_at .readonly, .field-occurred_at .readonly"
            ).all():
                text = cell.inner_text().strip()
                assert text == "-" or TIME.match(text), (path, text)
    finally:
        context.close()


def test_lists_show_short_ids_with_the_full_id_on_hover(chromium, live_server, engine_rows):
    _root, device = create_staff_user("root", superuser=True)
    context = chromium.new_context(
        base_url=live_server.url, viewport={"width": 1366, "height": 768}
    )
    try:
        page = context.new_page()
        page.foreign_requests = []
        log_in(page, "root", PASSWORD, fresh_code(device))
        page.wait_for_url("**/admin/")
        page.goto("/admin/deadletters/deadletter/")
        rows = page.locator("#result_list tbody tr")
        assert rows.count() == engine_rows["dead_letters"]
        ids = {str(dl.public_id) for dl in DeadLetter.objects.all()}
        for row in rows.all():
            short = row.locator(".portal-id").first
            full = short.get_attribute("title")
            assert full in ids
            # Shown short, one line; the full id stays in the text, so a copy takes it all.
            assert short.text_content() == full
            box = short.bounding_box()
            assert box is not None and box["width"] < 120 and box["height"] < 30
        row_height = rows.first.bounding_box()
        assert row_height is not None and row_height["height"] < 60
    finally:
        context.close()
