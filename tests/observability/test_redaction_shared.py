"""The logs and the audit history blank the same keys: one walker, ``portal.redaction``."""

from __future__ import annotations

import pytest

from portal.audit.services import Actor, audit_record
from portal.observability.logging import get_logger
from portal.redaction import REDACTED

# One key per alternative of ``portal.redaction.SECRET_KEY_PATTERN``.
SECRET_KEYS = [
    "password",
    "client_secret",
    "refresh_token",
    "api_key",
    "Authorization",
    "otp_code",
    "session_cookie",
    "credential_ref",
    "private_key",
    "signature",
    "session_id",
]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_the_logs_and_the_audit_blank_every_secret_pattern(key, db, log_capture):
    data = {key: "value-1234", "nested": [{key: "value-5678"}], "ok": "visible"}

    get_logger("tests.redaction.shared").info("shared.redaction", **data)
    event = audit_record(actor=Actor.system(), action="test.redaction", data=data)

    (line,) = log_capture.events("shared.redaction")
    expected = {key: REDACTED, "nested": [{key: REDACTED}], "ok": "visible"}
    assert {name: line[name] for name in data} == expected
    assert event.data == expected


def test_the_audit_also_blanks_inline_credentials_and_its_own_keys(db):
    event = audit_record(
        actor=Actor.system(),
        action="test.redaction",
        data={"note": "sent Bearer abcdef-secret", "code_hash": "c0de", "signing_key": "k"},
    )
    assert event.data == {
        "note": f"sent Bearer {REDACTED}",
        "code_hash": REDACTED,
        "signing_key": REDACTED,
    }
