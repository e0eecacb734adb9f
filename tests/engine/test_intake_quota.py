"""The open-intent quota on its bounded estimate, and the per-process target cache."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext

from intents import errors, rate_window, selectors
from intents.models import (
    OPEN_STATUSES,
    ApiRateWindow,
    Intent,
    IntentStatus,
    Target,
    TargetRevision,
)
from intents.services import intent_cancel, intent_submit

pytestmark = pytest.mark.django_db

PAYLOAD = {"to": "+15550100001", "text": "Your code is 123456"}


def submit(tenant, key, **overrides):
    args = {
        "tenant": tenant,
        "idempotency_key": key,
        "target_key": "sms.otp",
        "contract_version": None,
        "payload": PAYLOAD,
    }
    args.update(overrides)
    return intent_submit(**args)


@pytest.fixture
def exact_counts(monkeypatch):
    """How many times the O(open intents) exact count ran."""
    calls = []
    real = selectors.open_intent_count_exact

    def counted(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(selectors, "open_intent_count_exact", counted)
    return calls


def open_count(tenant) -> int:
    return Intent.objects.filter(tenant=tenant, status__in=OPEN_STATUSES).count()


def test_the_cap_holds_exactly_while_most_checks_skip_the_exact_count(
    tenant, targets, frozen_clock, exact_counts
):
    tenant.max_open_intents = 20
    tenant.save(update_fields=["max_open_intents"])
    for n in range(10):
        assert submit(tenant, f"k{n}").created
    # One exact count (the first submit); the next nine were admitted on the estimate.
    assert len(exact_counts) == 1

    for n in range(10, 20):
        assert submit(tenant, f"k{n}").created
    with pytest.raises(errors.QuotaExceeded):
        submit(tenant, "k20")
    assert open_count(tenant) == 20
    # Near the cap the estimate reaches it, so the refusal was decided by an exact count.
    # (Counted besides the intent its own transaction had inserted, then rolled back.)
    assert exact_counts[-1]["tenant_id"] == tenant.pk and exact_counts[-1]["cap"] == 20
    assert exact_counts[-1]["besides"] is not None

    # Capacity freed anywhere is seen at once: near the cap every check counts.
    intent_cancel(tenant=tenant, public_id=Intent.objects.get(idempotency_key="k0").public_id)
    assert submit(tenant, "k21").created
    with pytest.raises(errors.QuotaExceeded):
        submit(tenant, "k22")
    assert open_count(tenant) == 20


def test_intents_created_by_other_processes_count_against_the_estimate(
    tenant, targets, frozen_clock, exact_counts
):
    tenant.max_open_intents = 3
    tenant.save(update_fields=["max_open_intents"])
    submit(tenant, "mine")
    this_process = dict(selectors._open_counts)  # counted here: 0 open, before "mine"
    # Another web process submits two intents: its own count, not this one's.
    selectors._open_counts.clear()
    for key in ("theirs-1", "theirs-2"):
        submit(tenant, key)
    selectors._open_counts.clear()
    selectors._open_counts.update(this_process)
    # Their requests are in the shared rate window, so this process's bound reaches the
    # cap and it counts exactly.
    with pytest.raises(errors.QuotaExceeded):
        submit(tenant, "one-too-many")
    assert open_count(tenant) == 3


def test_a_backlog_created_before_the_count_is_not_read_again(
    tenant, targets, frozen_clock, exact_counts, monkeypatch
):
    """Far below the cap, a check reads the tenant's rate windows, not its intents."""
    tenant.max_open_intents = 1_000
    tenant.save(update_fields=["max_open_intents"])
    submit(tenant, "first")
    counted_at = frozen_clock.now
    frozen_clock.advance(1)
    checks = []
    real = rate_window.windows_count_since

    def spy(**kwargs):
        checks.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(selectors, "windows_count_since", spy)
    assert submit(tenant, "second").created
    assert len(exact_counts) == 1
    [check] = checks
    assert check["tenant_id"] == tenant.pk
    assert check["since"] == counted_at - selectors.OPEN_COUNT_MARGIN
    # With this request's own admission, whose window count its UPDATE returned.
    assert check["counted"].window_start == frozen_clock.now.replace(second=0, microsecond=0)
    assert check["counted"].count == 2


def test_the_estimate_reads_no_window_while_its_bound_starts_in_the_current_minute(
    tenant, targets, frozen_clock, exact_counts
):
    """The window UPDATE returns its count: mid-minute, that is the whole bound."""
    tenant.max_open_intents = 1_000
    tenant.save(update_fields=["max_open_intents"])
    frozen_clock.advance(30)  # 12:00:30: the count's margin reaches back to 12:00:25
    submit(tenant, "first")
    frozen_clock.advance(1)
    with CaptureQueriesContext(connection) as captured:
        assert submit(tenant, "second").created
    assert len(exact_counts) == 1
    sent = [q["sql"].split()[0].upper() for q in captured]
    assert [verb for verb in sent if verb in ("SELECT", "INSERT", "UPDATE")] == ["INSERT", "UPDATE"]

    # At 12:01:02 the bound reaches back into 12:00's window: that row is read once.
    frozen_clock.advance(31)
    submit(tenant, "third")  # a fresh exact count (the last one is over 5 s old)
    frozen_clock.advance(1)
    with CaptureQueriesContext(connection) as captured:
        assert submit(tenant, "fourth").created
    sent = [q["sql"].split()[0].upper() for q in captured]
    assert [verb for verb in sent if verb in ("SELECT", "INSERT", "UPDATE")] == [
        "INSERT",
        "UPDATE",
        "SELECT",
    ]
    assert len(exact_counts) == 2


def test_requests_counted_in_the_windows_bound_the_estimate(
    tenant, targets, frozen_clock, exact_counts
):
    """Requests counted since the count (even refused ones) only make it count sooner."""
    tenant.max_open_intents = 4
    tenant.save(update_fields=["max_open_intents"])
    submit(tenant, "a")
    ApiRateWindow.objects.update(count=F("count") + 3)  # three more requests, elsewhere
    submit(tenant, "b")
    assert len(exact_counts) == 2  # 0 counted + 5 requests since >= 4: counted again
    assert open_count(tenant) == 2


def test_an_old_count_is_taken_again(tenant, targets, frozen_clock, exact_counts):
    submit(tenant, "a")
    frozen_clock.advance(selectors.OPEN_COUNT_MAX_AGE.total_seconds() + 0.1)
    submit(tenant, "b")
    assert len(exact_counts) == 2


def test_a_replay_reopen_drops_this_process_count(tenant, targets, frozen_clock, exact_counts):
    from intents.services import intent_reopen

    tenant.max_open_intents = 2
    tenant.save(update_fields=["max_open_intents"])
    failed = submit(tenant, "failed").intent
    Intent.objects.filter(pk=failed.pk).update(
        status=IntentStatus.FAILED, finished_at=frozen_clock.now
    )
    submit(tenant, "open")
    intent_reopen(intent=failed)
    with pytest.raises(errors.QuotaExceeded):
        submit(tenant, "third")


# --- The target cache ----------------------------------------------------------------


def test_a_registry_change_in_this_process_is_seen_at_once(tenant, targets):
    assert submit(tenant, "a").created  # sms.otp is now cached
    target = Target.objects.get(key="sms.otp")
    target.is_active = False
    target.save(update_fields=["is_active", "updated_at"])
    with pytest.raises(errors.TargetUnknown):
        submit(tenant, "b")


def test_a_cached_target_never_refuses_a_version_synced_elsewhere(tenant, targets):
    assert submit(tenant, "a").intent.contract_version == "1.2"
    # Another process records 1.3: no signal reaches this one (bulk_create, update).
    target = Target.objects.get(key="sms.otp")
    current = target.current_revision
    assert current is not None
    TargetRevision.objects.bulk_create(
        [
            TargetRevision(
                target=target,
                version="1.3",
                major=1,
                minor=3,
                gateway=current.gateway,
                contract={**current.contract, "version": "1.3"},
                checksum="f" * 64,
                source_path=current.source_path,
                created_by="elsewhere",
            )
        ]
    )
    newer = TargetRevision.objects.get(target=target, version="1.3")
    Target.objects.filter(pk=target.pk).update(current_revision=newer)

    result = submit(tenant, "b", contract_version="1.3")
    assert result.created
    assert result.intent.contract_version == "1.3"
