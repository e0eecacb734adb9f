"""intent_submit: idempotency, validation order, quotas, deadlines, tenant overrides."""

from __future__ import annotations

import datetime as dt

import pytest

from intents import errors
from intents.models import Intent, IntentStatus
from intents.services import intent_submit
from portal.errors import InvalidRequest

pytestmark = pytest.mark.django_db

PAYLOAD = {"to": "+15550100001", "text": "Your code is 123456"}


def submit(tenant, **overrides):
    args = {
        "tenant": tenant,
        "idempotency_key": "order-17",
        "target_key": "sms.otp",
        "contract_version": None,
        "payload": PAYLOAD,
    }
    args.update(overrides)
    return intent_submit(**args)


def test_creates_a_pending_intent_with_a_frozen_contract(frozen_clock, tenant, targets):
    result = submit(tenant, metadata={"order": "A-17"}, correlation_id="req-1")
    intent = result.intent
    assert result.created
    assert intent.status == IntentStatus.PENDING
    assert intent.contract_version == "1.2"
    assert intent.contract["retry"]["max_attempts"] == 6
    assert intent.next_attempt_at == frozen_clock.now
    assert intent.deadline_at == frozen_clock.now + dt.timedelta(seconds=600)
    assert bytes(intent.payload) == b'{"text":"Your code is 123456","to":"+15550100001"}'
    assert len(intent.payload_sha256) == 64
    assert intent.correlation_id == "req-1"


def test_same_key_same_request_returns_the_existing_intent(tenant, targets):
    first = submit(tenant).intent
    # Key order in the payload does not make it a different request.
    again = submit(tenant, payload={"text": PAYLOAD["text"], "to": PAYLOAD["to"]})
    assert not again.created
    assert again.intent.pk == first.pk
    assert Intent.objects.count() == 1


@pytest.mark.parametrize(
    "change",
    [
        {"payload": {**PAYLOAD, "text": "other"}},
        {"target_key": "sms.fast"},
        {"contract_version": "1.0"},
    ],
)
def test_same_key_different_request_is_a_conflict(tenant, targets, change):
    submit(tenant)
    with pytest.raises(errors.IdempotencyKeyReused):
        submit(tenant, **change)


def test_keys_are_per_tenant(tenant, other_tenant, targets):
    assert submit(tenant).created and submit(other_tenant).created


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there", "del\x7f", None, 12])
def test_bad_idempotency_keys(tenant, targets, key):
    with pytest.raises(errors.IdempotencyKeyInvalid):
        submit(tenant, idempotency_key=key)


def test_unknown_target(tenant, targets):
    with pytest.raises(errors.TargetUnknown):
        submit(tenant, target_key="fax.send")


@pytest.mark.parametrize("version", ["1.3", "2.0", "0.9"])
def test_incompatible_versions(tenant, targets, version):
    with pytest.raises(errors.ContractIncompatible):
        submit(tenant, contract_version=version)


def test_malformed_version_is_a_bad_request(tenant, targets):
    with pytest.raises(InvalidRequest):
        submit(tenant, contract_version="v1")


def test_payload_errors_carry_json_pointers(tenant, targets):
    with pytest.raises(errors.PayloadInvalid) as info:
        submit(tenant, payload={"to": "12345", "text": "x" * 1601, "extra": 1})
    found = info.value.errors
    assert found is not None
    pointers = sorted(e["pointer"] for e in found)
    assert pointers == ["/payload", "/payload/text", "/payload/to"]
    assert all(e["message"] for e in found)


def test_target_not_allowed_for_tenant(tenant, targets):
    tenant.allow_all_targets = False
    tenant.allowed_targets = ["push.alert"]
    tenant.save()
    with pytest.raises(errors.TargetNotAllowed):
        submit(tenant)


def test_open_intent_quota(tenant, targets):
    tenant.max_open_intents = 2
    tenant.save()
    submit(tenant, idempotency_key="a")
    submit(tenant, idempotency_key="b")
    with pytest.raises(errors.QuotaExceeded):
        submit(tenant, idempotency_key="c")
    # A replay of an existing key is still answered at the cap.
    assert not submit(tenant, idempotency_key="a").created


def test_deadline_seconds_may_only_shorten(frozen_clock, tenant, targets):
    intent = submit(tenant, deadline_seconds=30).intent
    assert intent.deadline_at == frozen_clock.now + dt.timedelta(seconds=30)
    with pytest.raises(InvalidRequest, match="only shorten"):
        submit(tenant, idempotency_key="k2", deadline_seconds=601)
    with pytest.raises(InvalidRequest):
        submit(tenant, idempotency_key="k3", deadline_seconds=0)


def test_tenant_retry_overrides_stay_within_bounds(tenant, targets):
    tenant.retry_overrides = {"max_attempts": 500, "max_delay_s": 10}
    tenant.save()
    intent = submit(tenant).intent
    assert intent.max_attempts == 20  # clamped to TENANT_RETRY_BOUNDS
    assert intent.contract["retry"]["max_delay_s"] == 10


def test_metadata_must_be_an_object(tenant, targets):
    with pytest.raises(InvalidRequest):
        submit(tenant, metadata=["not", "an", "object"])


@pytest.mark.parametrize("metadata", [{"note": ["a\x00b"]}, {"k\x00": 1}])
def test_metadata_holding_nul_is_refused_by_the_service(tenant, targets, metadata):
    """The service owns the rule (jsonb cannot store U+0000), not only the serializer."""
    with pytest.raises(InvalidRequest, match="U\\+0000") as refused:
        submit(tenant, metadata=metadata)
    assert refused.value.field == "metadata"
    assert not Intent.objects.exists()


@pytest.mark.parametrize("deadline_seconds", [0.5, 0, -1])
def test_deadline_seconds_below_one_is_refused_as_the_api_refuses_it(
    tenant, targets, deadline_seconds
):
    with pytest.raises(InvalidRequest) as refused:
        submit(tenant, deadline_seconds=deadline_seconds)
    assert refused.value.field == "deadline_seconds"
    assert submit(tenant, deadline_seconds=1).created  # the serializer's minimum is allowed
