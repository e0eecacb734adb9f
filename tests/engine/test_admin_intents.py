"""The read-only intent screens of the admin: roles, tenant scope, detail page, masking."""

from __future__ import annotations

import pytest
from django.test import Client

from intents.dispatch import run_once
from intents.models import Intent, IntentStatus
from portal.observability.logging import REDACTED
from tests.accounts.factories import create_staff_user, staff_client

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/intents/intent/"


def detail_url(intent: Intent) -> str:
    return f"{CHANGELIST}{intent.pk}/change/"


def drive_to_terminal(intent: Intent, frozen_clock) -> Intent:
    for _ in range(10):
        run_once()
        intent.refresh_from_db()
        if intent.is_terminal:
            return intent
        frozen_clock.advance(1)
    raise AssertionError(f"{intent.public_id} is still {intent.status}")


@pytest.mark.parametrize("role", ["operators", "approvers", "auditors", "platform_admins"])
def test_every_staff_role_may_list_and_open_intents(role, frozen_clock, scripted, submit):
    intent = submit()
    client = staff_client("staff", [role])
    listing = client.get(CHANGELIST)
    assert listing.status_code == 200
    assert str(intent.public_id) in listing.content.decode()
    page = client.get(detail_url(intent))
    assert page.status_code == 200
    assert str(intent.public_id) in page.content.decode()


def test_staff_without_a_role_is_refused(frozen_clock, scripted, submit):
    intent = submit()
    client = staff_client("norole")
    assert client.get(CHANGELIST).status_code == 403
    assert client.get(detail_url(intent)).status_code == 403


def test_a_login_without_the_second_factor_is_sent_to_the_login_page(
    frozen_clock, scripted, submit
):
    intent = submit()
    user, _ = create_staff_user("halfway", roles=["operators"])
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    response = client.get(detail_url(intent))
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_nobody_adds_changes_or_deletes_intents_not_even_a_superuser(
    frozen_clock, scripted, submit
):
    intent = submit()
    client = staff_client("root", superuser=True)
    page = client.get(detail_url(intent))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert client.get(f"{CHANGELIST}add/").status_code == 403
    assert client.get(f"{CHANGELIST}{intent.pk}/delete/").status_code == 403
    response = client.post(detail_url(intent), {"status": "accepted", "idempotency_key": "x"})
    assert response.status_code == 403
    intent.refresh_from_db()
    assert intent.status == IntentStatus.PENDING
    assert intent.idempotency_key != "x"


def test_operators_see_only_their_tenants(frozen_clock, scripted, submit, tenant, other_tenant):
    own = submit(key="ours")
    foreign = submit(key="theirs", tenant_=other_tenant)
    client = staff_client("scoped", ["operators"], tenants=[tenant])
    listing = client.get(CHANGELIST).content.decode()
    assert str(own.public_id) in listing
    assert str(foreign.public_id) not in listing
    assert other_tenant.name not in listing  # not even offered as a filter
    # A foreign intent's page does not open: the admin answers as for an unknown id.
    response = client.get(detail_url(foreign))
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get(detail_url(own)).status_code == 200
    # A user scoped to both tenants sees both.
    both = staff_client("both", ["operators"], tenants=[tenant, other_tenant]).get(CHANGELIST)
    assert str(foreign.public_id) in both.content.decode()


def test_detail_shows_the_attempt_timeline_the_contract_and_a_masked_payload(
    frozen_clock, scripted, submit
):
    # sms.fast marks "text" as sensitive; 503 every time: three attempts, then exhausted.
    intent = submit("+15550100503", payload={"to": "+15550100503", "text": "Your code is 987654"})
    intent = drive_to_terminal(intent, frozen_clock)
    assert intent.status == IntentStatus.EXHAUSTED
    page = staff_client("ada", ["auditors"]).get(detail_url(intent)).content.decode()
    # The attempt timeline: numbers, outcome, gateway status, duration, error.
    timeline = page.split('id="attempt-timeline"')[1].split("</table>")[0]
    assert timeline.count("<tr>") == 4  # header + 3 attempts
    assert timeline.count(">rejected_transient</td>") == 3
    assert "<td>503</td>" in timeline
    assert "HTTP 503" in timeline
    assert " ms</td>" in timeline
    # The frozen contract snapshot.
    snapshot = page.split('id="contract-snapshot"')[1]
    assert "&quot;key&quot;: &quot;sms.fast&quot;" in snapshot
    assert "&quot;max_attempts&quot;: 3" in snapshot
    # The payload: the recipient shown, the sensitive text masked, nowhere on the page.
    payload = page.split('id="intent-payload"')[1].split("</div>")[0]
    assert "+15550100503" in payload
    assert REDACTED in payload
    assert "987654" not in page
    assert "Your code is" not in page


def test_masking_reaches_nested_fields(frozen_clock, scripted, submit):
    intent = submit(payload={"to": "+15550100001", "text": "top secret"})
    # The snapshot decides, not the live registry: mask a nested field the snapshot names.
    intent.contract = {**intent.contract, "sensitive_fields": ["text", "pin"]}
    intent.payload = b'{"to":"+15550100001","text":"top secret","extra":[{"pin":"4321"}]}'
    intent.save(update_fields=["contract", "payload"])
    page = staff_client("ada", ["auditors"]).get(detail_url(intent)).content.decode()
    assert "top secret" not in page
    assert "4321" not in page
    assert "+15550100001" in page


def test_the_page_masks_what_the_logs_mask(frozen_clock, scripted, submit):
    """Secret-looking keys too, in any case, even when the contract does not name them."""
    intent = submit(payload={"to": "+15550100001", "text": "hello"})
    intent.payload = b'{"to":"+15550100001","text":"hello","meta":{"OTP":"135790","Pin":"2468"}}'
    intent.contract = {**intent.contract, "sensitive_fields": ["pin"]}
    intent.save(update_fields=["contract", "payload"])
    page = staff_client("ada", ["auditors"]).get(detail_url(intent)).content.decode()
    assert "135790" not in page  # OTP: secret-looking, never named by the contract
    assert "2468" not in page  # Pin: named as "pin"
    assert "hello" in page


def test_list_filters_and_search(frozen_clock, scripted, submit):
    failed = drive_to_terminal(submit("+15550100400", key="order-17"), frozen_clock)
    accepted = drive_to_terminal(submit("+15550100001", key="order-18"), frozen_clock)
    assert failed.status == IntentStatus.FAILED
    assert accepted.status == IntentStatus.ACCEPTED
    client = staff_client("olga", ["operators"])

    def listed(query: str) -> set[str]:
        response = client.get(f"{CHANGELIST}?{query}")
        assert response.status_code == 200
        content = response.content.decode()
        return {
            name
            for name, intent in (("failed", failed), ("accepted", accepted))
            if str(intent.public_id) in content
        }

    assert listed("") == {"failed", "accepted"}
    assert listed("status__exact=failed") == {"failed"}
    assert listed("reason_code__exact=gateway_accepted") == {"accepted"}
    assert listed("target_key=sms.fast") == {"failed", "accepted"}
    assert listed("target_key=push.alert") == set()
    assert listed(f"tenant__id__exact={failed.tenant_id}") == {"failed", "accepted"}
    assert listed(f"created_at__gte={failed.created_at:%Y-%m-%d}") == {"failed", "accepted"}
    assert listed(f"q={accepted.public_id}") == {"accepted"}
    assert listed("q=order-17") == {"failed"}
    assert listed("q=order") == set()  # exact key only


def test_the_list_does_not_query_per_row(frozen_clock, scripted, submit, other_tenant):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    submit(key="first")
    client = staff_client("olga", ["operators"])
    with CaptureQueriesContext(connection) as one:
        assert client.get(CHANGELIST).status_code == 200
    more = [submit(key=f"more-{i}", tenant_=other_tenant) for i in range(3)]
    with CaptureQueriesContext(connection) as four:
        response = client.get(CHANGELIST)
    assert all(str(intent.public_id) in response.content.decode() for intent in more)
    assert len(four) == len(one)
