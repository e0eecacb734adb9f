from __future__ import annotations

import pytest
from django.db import connection

from portal.audit.services import Actor, audit_record


@pytest.fixture
def events(db):
    """Five chained events."""
    return [
        audit_record(
            actor=Actor.system("tests"),
            action=f"test.event{i}",
            object_type="thing",
            object_id=i,
            data={"n": i, "note": "ünïcode ok", "nested": {"b": 2, "a": [1, 2.5]}},
            ip_address="2001:DB8::1" if i % 2 else "192.0.2.10",
        )
        for i in range(1, 6)
    ]


@pytest.fixture
def raw_sql():
    """Run SQL behind the ORM's back (AuditEvent's queryset refuses update/delete)."""

    def _run(sql: str, params: list | None = None) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params or [])

    return _run
