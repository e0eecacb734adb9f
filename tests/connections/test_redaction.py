"""A secret's value appears in no log line, error, attempt row, audit event or admin page.

The connection's provider is a badly written one that echoes its credential into its
error text after a 401; the engine must scrub it wherever the error travels, and drop
the cached value so a rotated credential is read on the next attempt.
"""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from gateways.models import Connection, ConnectionHealth, ConnectionRevision
from gateways.secrets import resolver
from intents.models import Attempt, Intent
from portal.audit.models import AuditEvent
from tests.accounts.factories import staff_client

from .conftest import scripted_connection, sms_target

pytestmark = pytest.mark.django_db
SECRET = "s3cr3t-redaction-VALUE-42"
ROTATED = "r0tated-redaction-VALUE-43"


def test_a_secret_value_never_leaves_the_resolver(engine, monkeypatch, caplog, capsys) -> None:
    monkeypatch.setenv("PORTAL_TEST_LEAKY_TOKEN", SECRET)
    resolver.clear()
    engine.folders.connection(
        "leaky",
        scripted_connection("leaky", "leaky")
        + '[secrets]\ntoken = "env:PORTAL_TEST_LEAKY_TOKEN"\n',
    )
    engine.folders.target("sms_routed", sms_target("sms.routed", ["leaky"]))
    engine.folders.sync()
    intent = engine.submit()

    with caplog.at_level(logging.DEBUG):
        engine.run()
        # The 401 dropped the cached value: a rotated credential is read on the next use.
        monkeypatch.setenv("PORTAL_TEST_LEAKY_TOKEN", ROTATED)
        assert resolver.get("env:PORTAL_TEST_LEAKY_TOKEN") == ROTATED
        monkeypatch.setenv("PORTAL_TEST_LEAKY_TOKEN", SECRET)
        resolver.invalidate("env:PORTAL_TEST_LEAKY_TOKEN")
        out = io.StringIO()
        with pytest.raises(CommandError):
            call_command("check_connections", "--key", "leaky", stdout=out, stderr=out)

    attempt = Attempt.objects.get(intent=intent)
    assert attempt.error == "HTTP 401: token [redacted] refused"
    places = {
        "logs": caplog.text + "\n".join(str(r.__dict__) for r in caplog.records),
        "stdout": capsys.readouterr().out + out.getvalue(),
        "attempts": json.dumps(list(Attempt.objects.values()), default=str),
        "intents": json.dumps(list(Intent.objects.values()), default=str),
        "audit": json.dumps(list(AuditEvent.objects.values()), default=str),
        "connections": json.dumps(
            [
                *Connection.objects.values(),
                *ConnectionRevision.objects.values(),
                *ConnectionHealth.objects.values(),
            ],
            default=str,
        ),
    }
    client = staff_client("olga", ["operators"])
    connection = Connection.objects.get(key="leaky")
    for url in (
        "/admin/gateways/connection/",
        f"/admin/gateways/connection/{connection.pk}/change/",
        "/admin/gateways/connectionhealth/",
        "/admin/intents/intent/",
        f"/admin/intents/intent/{intent.pk}/change/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        places[url] = response.content.decode()
    assert (
        "env:PORTAL_TEST_LEAKY_TOKEN"
        in places[f"/admin/gateways/connection/{connection.pk}/change/"]
    )
    for where, text in places.items():
        assert SECRET not in text, where
    resolver.clear()
