"""The target registry: strict validation, all-or-nothing sync, revisions, compatibility."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from intents.errors import RegistryError
from intents.models import Target, TargetRevision
from intents.registry import is_compatible, registry_sync
from portal.audit.models import AuditEvent
from tests.conftest import FIXTURE_TARGETS

pytestmark = pytest.mark.django_db

GOOD = (FIXTURE_TARGETS / "sms_fast.toml").read_text()


@pytest.fixture
def target_dir(tmp_path) -> Path:
    shutil.copy(FIXTURE_TARGETS / "sms_fast.toml", tmp_path / "sms_fast.toml")
    return tmp_path


@pytest.mark.parametrize(
    ("registry", "requested", "ok"),
    [
        ("1.2", "1.0", True),
        ("1.2", "1.2", True),
        ("1.2", "1.3", False),
        ("1.2", "2.0", False),
        ("2.0", "1.9", False),
        ("10.0", "1.0", False),
        ("1.10", "1.9", True),
    ],
)
def test_compatibility_table(registry, requested, ok):
    assert is_compatible(registry_version=registry, requested_version=requested) is ok


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda s: s.replace('gateway = "sms"', 'gateway = "fax"'), "gateway must be one of"),
        (lambda s: s.replace('version = "1.0"', 'version = "1"'), "not MAJOR.MINOR"),
        (lambda s: s.replace('version = "1.0"', "version = 1.0"), "version must be a string"),
        (lambda s: s.replace("attempt_timeout_s = 2", "attempt_timeout_s = 0"), "must be > 0"),
        (lambda s: s.replace("attempt_timeout_s = 2", "attempt_timeout_s = 60"), "shorter than"),
        (lambda s: s.replace("attempt_timeout_s = 2", "attempt_timeout_s = 61"), "at most 60"),
        (lambda s: s.replace('strategy = "fixed"', 'strategy = "random"'), "retry.strategy"),
        (lambda s: s.replace("max_attempts = 3", "max_attempts = 0"), "max_attempts must be"),
        (lambda s: s.replace("max_delay_s = 1", "max_delay_s = 0.5"), "max_delay_s must be >="),
        (lambda s: s.replace('type = "object"', 'type = "objekt"', 1), "not a valid JSON Schema"),
        (lambda s: "colour = 'blue'\n" + s, "unknown keys: colour"),
        (lambda s: s.replace('key = "sms.bad"', 'key = "SMS bad"'), "key must be"),
        (lambda s: s.replace("[retry]", "[retry_policy]"), "unknown keys: retry_policy"),
        (lambda s: s.replace('key = "sms.bad"', 'key = "sms.bad'), "not valid TOML"),
    ],
)
def test_a_bad_file_names_its_path_and_reason_and_applies_nothing(target_dir, edit, reason):
    (target_dir / "other.toml").write_text(GOOD.replace('"sms.fast"', '"sms.other"'))
    bad = target_dir / "zz_bad.toml"
    bad.write_text(edit(GOOD.replace('"sms.fast"', '"sms.bad"')))
    with pytest.raises(RegistryError) as info:
        registry_sync(directory=target_dir)
    assert str(bad) in info.value.detail
    assert reason in info.value.detail
    assert not Target.objects.exists()  # the good files were not applied either


def test_duplicate_keys_are_refused(target_dir):
    shutil.copy(target_dir / "sms_fast.toml", target_dir / "copy.toml")
    with pytest.raises(RegistryError, match="also defined in"):
        registry_sync(directory=target_dir)


def test_sync_records_revisions_with_checksum_diff_and_audit(target_dir):
    report = registry_sync(directory=target_dir)
    assert report.created == ["sms.fast"]
    first = TargetRevision.objects.get()
    assert len(first.checksum) == 64
    assert registry_sync(directory=target_dir).unchanged == ["sms.fast"]
    assert TargetRevision.objects.count() == 1

    changed = GOOD.replace('version = "1.0"', 'version = "1.1"').replace(
        "max_attempts = 3", "max_attempts = 4"
    )
    (target_dir / "sms_fast.toml").write_text(changed)
    assert registry_sync(directory=target_dir).revised == ["sms.fast"]
    second = Target.objects.get().current_revision
    assert second is not None
    assert second.version == "1.1" and second.checksum != first.checksum
    assert '-    "max_attempts": 3' in second.diff and '+    "max_attempts": 4' in second.diff
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions == ["target.created", "target.revised"]


def test_a_changed_contract_must_raise_its_version(target_dir):
    registry_sync(directory=target_dir)
    (target_dir / "sms_fast.toml").write_text(GOOD.replace("max_attempts = 3", "max_attempts = 4"))
    with pytest.raises(RegistryError, match="did not; raise MINOR"):
        registry_sync(directory=target_dir)
    older = GOOD.replace('version = "1.0"', 'version = "0.9"')
    (target_dir / "sms_fast.toml").write_text(older)
    with pytest.raises(RegistryError, match="older than"):
        registry_sync(directory=target_dir)


def test_editing_a_target_never_changes_an_accepted_intent(target_dir, tenant):
    from intents.services import intent_submit

    registry_sync(directory=target_dir)
    intent = intent_submit(
        tenant=tenant,
        idempotency_key="k",
        target_key="sms.fast",
        contract_version=None,
        payload={"to": "+15550100001", "text": "x"},
    ).intent
    (target_dir / "sms_fast.toml").write_text(
        GOOD.replace('version = "1.0"', 'version = "1.1"').replace(
            "max_attempts = 3", "max_attempts = 9"
        )
    )
    registry_sync(directory=target_dir)
    intent.refresh_from_db()
    assert intent.contract["retry"]["max_attempts"] == 3
    assert intent.contract_version == "1.0"
    assert intent.max_attempts == 3


def test_missing_files_retire_targets_and_an_empty_folder_is_refused(target_dir, tmp_path_factory):
    registry_sync(directory=target_dir)
    other = tmp_path_factory.mktemp("other")
    (other / "x.toml").write_text(GOOD.replace('"sms.fast"', '"sms.x"'))
    assert registry_sync(directory=other).retired == ["sms.fast"]
    assert not Target.objects.get(key="sms.fast").is_active
    with pytest.raises(RegistryError, match="no target files"):
        registry_sync(directory=tmp_path_factory.mktemp("empty"))


def test_sync_targets_command_reports_and_fails_cleanly(target_dir, capsys):
    call_command("sync_targets", "--dir", str(target_dir))
    assert "created: sms.fast" in capsys.readouterr().out
    (target_dir / "bad.toml").write_text("key = ")
    with pytest.raises(CommandError, match=r"nothing applied: .*bad\.toml: not valid TOML"):
        call_command("sync_targets", "--dir", str(target_dir))


def test_shipped_registry_files_are_valid():
    from django.conf import settings

    from intents.registry import load_directory

    keys = {spec.key for spec in load_directory(Path(settings.TARGETS_DIR))}
    assert {"sms.otp", "push.alert", "http.webhook"} <= keys
