"""Connection files loaded by sync_targets: revisions, audit, all or nothing."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from gateways.models import Connection, ConnectionRevision
from intents.errors import RegistryError
from intents.models import Target, TargetRevision
from portal.audit.models import AuditEvent

from .conftest import SIMULATOR_SMS, sms_target

pytestmark = pytest.mark.django_db


def test_a_connection_is_loaded_with_a_revision_and_an_audit_event(folders) -> None:
    folders.connection("sim_a", SIMULATOR_SMS)
    folders.target("sms_routed", sms_target("sms.routed", ["sim-a", "simulator-sms"]))

    report = folders.sync()

    assert report.connections.created == ["sim-a"]
    connection = Connection.objects.get(key="sim-a")
    revision = connection.current_revision
    assert revision is not None
    assert revision.provider == "simulator" and revision.channel == "sms"
    assert revision.spec["rate_per_second"] == 5.0
    assert revision.spec["circuit"] == {
        "failure_ratio": 0.5,
        "min_calls": 20,
        "window_s": 60.0,
        "open_s": 30.0,
    }
    assert len(revision.checksum) == 64
    event = AuditEvent.objects.get(action="connection.created")
    assert event.object_id == "sim-a" and event.data["checksum"] == revision.checksum
    contract = Target.objects.get(key="sms.routed").revision.contract
    assert contract["connections"] == ["sim-a", "simulator-sms"]


def test_an_unchanged_file_is_unchanged_a_changed_one_revised_a_removed_one_retired(
    folders,
) -> None:
    path = folders.connection("sim_a", SIMULATOR_SMS)
    folders.sync()
    assert folders.sync().connections.unchanged == ["sim-a"]

    path.write_text(SIMULATOR_SMS.replace("rate_per_second = 5", "rate_per_second = 7"))
    report = folders.sync()
    assert report.connections.revised == ["sim-a"]
    latest = ConnectionRevision.objects.filter(connection__key="sim-a").latest()
    assert '-  "rate_per_second": 5.0' in latest.diff
    assert '+  "rate_per_second": 7.0' in latest.diff

    path.unlink()
    assert folders.sync().connections.retired == ["sim-a"]
    assert not Connection.objects.get(key="sim-a").is_active
    assert AuditEvent.objects.filter(action="connection.retired", object_id="sim-a").exists()


def test_a_bad_file_names_its_path_and_reason_and_nothing_is_applied(folders) -> None:
    folders.connection("good", SIMULATOR_SMS)
    bad = folders.connection("bad", 'key = "x"\nprovider = "carrier-pigeon"\n')

    with pytest.raises(RegistryError) as caught:
        folders.sync()

    assert str(bad) in caught.value.detail
    assert "provider must be one of" in caught.value.detail
    assert not Connection.objects.exists()
    assert not Target.objects.exists()  # the targets of that run are not applied either


def test_a_target_naming_an_unknown_connection_is_refused(folders) -> None:
    path = folders.target("sms_routed", sms_target("sms.routed", ["nowhere"]))

    with pytest.raises(RegistryError, match="unknown connection 'nowhere'") as caught:
        folders.sync()

    assert str(path) in caught.value.detail
    assert not TargetRevision.objects.exists()


def test_a_target_naming_a_connection_of_another_channel_is_refused(folders) -> None:
    folders.target("sms_routed", sms_target("sms.routed", ["simulator-push"]))

    with pytest.raises(RegistryError, match="'simulator-push' serves push, not sms"):
        folders.sync()


def test_a_secret_value_in_place_of_a_reference_is_refused_without_echoing_it(folders) -> None:
    folders.connection(
        "leaky",
        """
        key = "leaky"
        provider = "simulator"
        channel = "sms"
        [secrets]
        token = "hunter2-super-secret"
        """,
    )
    with pytest.raises(RegistryError, match=r"secrets\.token: not a secret reference") as caught:
        folders.sync()
    assert "hunter2" not in caught.value.detail


def test_a_credential_in_settings_is_refused(folders) -> None:
    folders.connection(
        "leaky",
        """
        key = "leaky"
        provider = "simulator"
        channel = "sms"
        [settings]
        password = "x"
        """,
    )
    with pytest.raises(RegistryError, match=r"settings\.password looks like a credential"):
        folders.sync()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('delivery = "twice"', "delivery must be one of at_least_once, at_most_once"),
        ("connections = []", "connections must be a non-empty list"),
        ('gateway = "fax"', "gateway must be one of sms, push, http, email"),
    ],
)
def test_bad_target_keys_are_refused(folders, line: str, reason: str) -> None:
    text = sms_target("sms.routed", ["simulator-sms"])
    key = line.split(" = ")[0]
    text = "\n".join(row for row in text.splitlines() if not row.strip().startswith(f"{key} ="))
    folders.target("sms_routed", line + "\n" + text)
    with pytest.raises(RegistryError, match=reason):
        folders.sync()


def test_a_comment_only_file_is_an_example_and_is_skipped(folders) -> None:
    folders.connection("example", "# key = 'twilio-main'\n# provider = 'twilio'\n")
    assert folders.sync().connections.created == []


def test_targets_without_the_new_keys_keep_their_checksums(folders) -> None:
    folders.sync()
    before = {t.key: t.revision.checksum for t in Target.objects.select_related("current_revision")}
    folders.connection("sim_a", SIMULATOR_SMS)
    report = folders.sync()
    assert sorted(report.unchanged) == sorted(before)


def test_sync_targets_command_reports_connections_and_refuses_bad_files(folders) -> None:
    folders.connection("sim_a", SIMULATOR_SMS)
    out = _call(folders)
    assert "connections created: sim-a" in out
    folders.connection("bad", "key = ")
    with pytest.raises(CommandError, match=r"nothing applied: .*bad\.toml: not valid TOML"):
        _call(folders)


def _call(folders) -> str:
    import io

    stdout = io.StringIO()
    call_command(
        "sync_targets",
        "--dir",
        str(folders.targets),
        "--connections-dir",
        str(folders.connections),
        stdout=stdout,
    )
    return stdout.getvalue()
