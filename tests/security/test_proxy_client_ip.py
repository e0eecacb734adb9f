"""Finding 5: behind reverse proxies, lockouts and audit events key on the client's
address read through exactly TRUSTED_PROXY_COUNT hops of X-Forwarded-For; with the
default (0) a forged header changes nothing."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import RequestFactory

from portal.audit.models import AuditEvent
from portal.audit.services import ip_from_request
from tests.accounts.factories import PASSWORD, create_staff_user, totp_code

pytestmark = pytest.mark.django_db

PROXY = "10.0.0.5"


def _login(client, username, *, client_ip, password="wrong", token="", forged=""):  # noqa: S107
    chain = ", ".join(part for part in (forged, client_ip) if part)
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password, "otp_token": token},
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR=chain,
    )


@pytest.mark.parametrize(
    "hops, forwarded, expected",
    [
        (0, "203.0.113.9", PROXY),  # the default never reads the header
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # the left part is the client's own
        (2, "6.6.6.6, 203.0.113.9, 10.0.0.4", "203.0.113.9"),
        (2, "203.0.113.9", PROXY),  # fewer hops than configured: only the peer is known
        (1, "not-an-address", PROXY),
    ],
)
def test_client_address_through_the_trusted_hops(settings, hops, forwarded, expected):
    settings.TRUSTED_PROXY_COUNT = hops
    request = RequestFactory().get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded)
    assert ip_from_request(request) == expected


def test_behind_one_proxy_an_attacker_locks_out_only_their_own_address(client, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    _, device = create_staff_user("olga", roles=["operators"])
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, "olga", client_ip="198.51.100.66")
    assert _login(client, "olga", client_ip="198.51.100.66").status_code == 429

    # The real user, through the same proxy from their own address, still logs in.
    response = _login(
        client, "olga", client_ip="203.0.113.9", password=PASSWORD, token=totp_code(device)
    )
    assert response.status_code == 302
    login = AuditEvent.objects.filter(action="auth.login").get()
    assert login.ip_address == "203.0.113.9"


def test_with_the_default_a_forged_header_changes_nothing(client):
    assert settings.TRUSTED_PROXY_COUNT == 0
    create_staff_user("olga", roles=["operators"])
    for n in range(settings.AXES_FAILURE_LIMIT):
        _login(client, "olga", client_ip=f"198.51.100.{n}")
    # Every attempt counted against the proxy's own address, whatever the header said.
    assert _login(client, "olga", client_ip="198.51.100.200").status_code == 429
    failed = AuditEvent.objects.filter(action="auth.login_failed")
    assert set(failed.values_list("ip_address", flat=True)) == {PROXY}
