"""Finding 9: backup codes carry at least 80 random bits, as their hashing assumes."""

from __future__ import annotations

import pytest

from portal.accounts.models import BackupCodeDevice
from tests.accounts.factories import create_staff_user

pytestmark = pytest.mark.django_db


def test_each_backup_code_is_at_least_80_bits():
    user, _ = create_staff_user("nina")
    device = BackupCodeDevice.objects.create(user=user, name="backup codes", confirmed=True)

    codes = device.issue_codes()

    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(len(code) * 4 >= 80 and int(code, 16) >= 0 for code in codes)
    assert device.verify_token(codes[0].upper())
