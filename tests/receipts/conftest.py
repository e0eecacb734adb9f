"""Receipts tests: accepted intents through the real engine (a scripted provider)."""

from __future__ import annotations

import pytest

from tests.connections.conftest import (  # noqa: F401 (fixtures)
    engine,
    folders,
    scripted_connection,
    scripted_provider,
    sms_target,
)

SCRIPTED_WITH_RECEIPTS = scripted_connection("scripted") + "    receipts = true\n"


@pytest.fixture
def accepted(engine):  # noqa: F811 (the fixture imported above)
    """Submit and run intents through ``scripted`` (which says it sends receipts)."""
    engine.folders.connection("scripted", SCRIPTED_WITH_RECEIPTS)
    engine.folders.target("sms_routed", sms_target("sms.routed", ["scripted"]))
    engine.folders.sync()

    def make(to: str = "+15550100001"):
        from intents.models import Intent

        intent = engine.submit(to=to)
        engine.run()
        return Intent.objects.get(pk=intent.pk)

    return make
