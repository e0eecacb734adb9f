from __future__ import annotations

import pytest

from tests.engine import scripted_gateway

SCRIPTED = "tests.engine.scripted_gateway.ScriptedGateway"


@pytest.fixture
def scripted(settings):
    """Every gateway answered by the scripted in-process gateway."""
    settings.GATEWAY_ADAPTERS = {"sms": SCRIPTED, "push": SCRIPTED, "http": SCRIPTED}
    scripted_gateway.reset()
    yield scripted_gateway
    scripted_gateway.reset()


@pytest.fixture
def submit(tenant, targets):
    """Submit an intent through the service with sensible defaults."""
    from intents.services import intent_submit

    counter = {"n": 0}

    def _submit(to="+15550100001", *, target="sms.fast", key=None, tenant_=None, **extra):
        counter["n"] += 1
        payload = extra.pop("payload", None) or {"to": to, "text": "hello"}
        return intent_submit(
            tenant=tenant_ or tenant,
            idempotency_key=key or f"key-{counter['n']}",
            target_key=target,
            contract_version=extra.pop("contract_version", None),
            payload=payload,
            **extra,
        ).intent

    return _submit


@pytest.fixture
def clone_intents():
    """Copy an intent ``n`` times with fresh ids and keys (a backlog, fast)."""
    import uuid

    from intents.models import Intent

    def _clone(template, n):
        fields = [f for f in Intent._meta.concrete_fields if not f.primary_key]
        rows = []
        for i in range(n):
            row = Intent(**{f.attname: getattr(template, f.attname) for f in fields})
            row.public_id = uuid.uuid4()
            row.idempotency_key = f"{template.idempotency_key}-clone-{i}"
            rows.append(row)
        Intent.objects.bulk_create(rows, batch_size=200)

    return _clone
