"""The secret resolver: env, file and AWS Secrets Manager (moto server), TTL, invalidation."""

from __future__ import annotations

import json
import uuid

import pytest

from gateways.secrets import SecretResolver, SecretUnavailable, check_reference


class Ticking:
    """An injected monotonic clock: ``advance(s)`` moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_env_reference(monkeypatch) -> None:
    monkeypatch.setenv("PORTAL_TEST_TOKEN", "tok-123")
    assert SecretResolver().get("env:PORTAL_TEST_TOKEN") == "tok-123"


def test_file_reference_is_stripped(tmp_path) -> None:
    path = tmp_path / "secret"
    path.write_text("file-value\n")
    assert SecretResolver().get(f"file:{path}") == "file-value"


def test_values_are_cached_for_the_ttl_then_read_again(monkeypatch) -> None:
    clock = Ticking()
    resolver = SecretResolver(ttl_s=300, monotonic=clock)
    monkeypatch.setenv("PORTAL_TEST_TOKEN", "first")
    assert resolver.get("env:PORTAL_TEST_TOKEN") == "first"
    monkeypatch.setenv("PORTAL_TEST_TOKEN", "rotated")
    clock.advance(299)
    assert resolver.get("env:PORTAL_TEST_TOKEN") == "first"
    clock.advance(1)
    assert resolver.get("env:PORTAL_TEST_TOKEN") == "rotated"


def test_the_ttl_defaults_to_the_setting(monkeypatch, settings) -> None:
    settings.SECRETS_TTL_S = 10
    clock = Ticking()
    resolver = SecretResolver(monotonic=clock)
    monkeypatch.setenv("PORTAL_TEST_TOKEN", "first")
    resolver.get("env:PORTAL_TEST_TOKEN")
    monkeypatch.setenv("PORTAL_TEST_TOKEN", "rotated")
    clock.advance(10)
    assert resolver.get("env:PORTAL_TEST_TOKEN") == "rotated"


def test_invalidate_rereads_at_once(monkeypatch) -> None:
    resolver = SecretResolver(ttl_s=300, monotonic=Ticking())
    monkeypatch.setenv("PORTAL_TEST_TOKEN", "first")
    resolver.get("env:PORTAL_TEST_TOKEN")
    monkeypatch.setenv("PORTAL_TEST_TOKEN", "rotated")
    resolver.invalidate("env:PORTAL_TEST_TOKEN")
    assert resolver.get("env:PORTAL_TEST_TOKEN") == "rotated"


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        (
            "env:PORTAL_TEST_UNSET_VARIABLE",
            "env:PORTAL_TEST_UNSET_VARIABLE: the variable is not set",
        ),
        ("file:/nonexistent/portal-secret", "file:/nonexistent/portal-secret: cannot read"),
        ("file:relative", "must be an absolute path"),
        ("plain-value-pasted", "not a secret reference"),
    ],
)
def test_unresolvable_references_name_the_reference(reference: str, message: str) -> None:
    with pytest.raises(SecretUnavailable, match=message) as caught:
        SecretResolver().get(reference)
    if reference == "plain-value-pasted":
        assert reference not in str(caught.value)


def test_check_reference_accepts_the_three_schemes() -> None:
    for reference in ("env:A", "file:/a", "aws-secretsmanager:prod/a#key"):
        check_reference(reference)


def test_aws_secrets_manager_string_and_json_key(aws_secrets) -> None:
    name = f"portal/{uuid.uuid4().hex}"
    aws_secrets.create_secret(Name=name, SecretString="plain-aws-value")
    doc = f"{name}-json"
    aws_secrets.create_secret(
        Name=doc, SecretString=json.dumps({"auth_token": "aws-json-value", "other": "x"})
    )
    resolver = SecretResolver()
    assert resolver.get(f"aws-secretsmanager:{name}") == "plain-aws-value"
    assert resolver.get(f"aws-secretsmanager:{doc}#auth_token") == "aws-json-value"


def test_aws_rotation_is_seen_after_an_invalidation(aws_secrets) -> None:
    name = f"portal/{uuid.uuid4().hex}"
    aws_secrets.create_secret(Name=name, SecretString="v1-value")
    resolver = SecretResolver(ttl_s=300, monotonic=Ticking())
    reference = f"aws-secretsmanager:{name}"
    assert resolver.get(reference) == "v1-value"
    aws_secrets.put_secret_value(SecretId=name, SecretString="v2-value")
    assert resolver.get(reference) == "v1-value"  # cached
    resolver.invalidate(reference)  # a provider answered 401/403
    assert resolver.get(reference) == "v2-value"


def test_aws_errors_name_the_reference_and_the_code(aws_secrets) -> None:
    name = f"portal/{uuid.uuid4().hex}"
    aws_secrets.create_secret(Name=name, SecretString=json.dumps({"a": "secret-a-value"}))
    resolver = SecretResolver()
    with pytest.raises(SecretUnavailable, match="ResourceNotFoundException"):
        resolver.get("aws-secretsmanager:portal/missing")
    with pytest.raises(SecretUnavailable, match="has no key 'b'") as caught:
        resolver.get(f"aws-secretsmanager:{name}#b")
    assert "secret-a-value" not in str(caught.value)


def test_scrub_blanks_every_resolved_value(monkeypatch) -> None:
    resolver = SecretResolver()
    monkeypatch.setenv("PORTAL_TEST_TOKEN", "very-secret-token")
    resolver.get("env:PORTAL_TEST_TOKEN")
    assert (
        resolver.scrub("HTTP 401: bad token very-secret-token") == "HTTP 401: bad token [redacted]"
    )


def test_scrub_still_knows_a_value_after_its_invalidation(monkeypatch) -> None:
    resolver = SecretResolver()
    monkeypatch.setenv("PORTAL_TEST_TOKEN", "refused-token-value")
    resolver.get("env:PORTAL_TEST_TOKEN")
    resolver.invalidate("env:PORTAL_TEST_TOKEN")  # the provider said 401
    assert resolver.scrub("token refused-token-value refused") == "token [redacted] refused"
