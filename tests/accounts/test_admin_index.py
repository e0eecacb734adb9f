"""The admin index leads each role to its work."""

from __future__ import annotations

import pytest

from tests.accounts.factories import create_staff_user, verified_login


@pytest.mark.django_db
@pytest.mark.parametrize(
    "roles,visible,hidden",
    [
        (
            ["operators"],
            ["Plan a replay", "Open dead letters", "Operations dashboard"],
            ["awaiting your decision"],
        ),
        # Approvers decide; planning is the operators' (the plan page would refuse them).
        (["approvers"], ["awaiting your decision", "Open dead letters"], ["Plan a replay"]),
        (["auditors"], ["Operations dashboard"], ["Plan a replay", "awaiting your decision"]),
    ],
)
def test_index_shortcuts_follow_roles(client, roles, visible, hidden):
    user, device = create_staff_user("u1", roles=roles)
    verified_login(client, user, device)
    html = client.get("/admin/").content.decode()
    for text in visible:
        assert text in html
    for text in hidden:
        assert text not in html
