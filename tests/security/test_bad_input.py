"""Finding 6: no bad input reaches a 500. NUL characters, odd or huge time offsets,
out-of-range years and deeply nested JSON in every list, filter and cursor parameter
are answered 400: problem+json on the API, the admin's plain 400 on staff screens."""

from __future__ import annotations

import base64
import json

import pytest
from django.contrib import admin

from tests.accounts.factories import create_staff_user, verified_login
from tests.api.conftest import assert_problem

pytestmark = pytest.mark.django_db


def _cursor(document: object) -> str:
    raw = document if isinstance(document, str) else json.dumps(document)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


UUID = "0b7e0c4e-8a5e-4a55-9a4b-6b8f8f6d1c11"
# Offsets ISO 8601 allows and PostgreSQL refuses: read in UTC, they are fine.
ODD_OFFSETS = ["2026-01-05T12:00:00+23:59", "2026-01-05T12:00:00-23:59"]
# Years some backend cannot store (in UTC, or at all): refused.
OUT_OF_RANGE = [
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59-01:00",
    "9999-12-31T23:59:59Z",
]
BAD_CURSORS = {
    **{f"time {time}": _cursor({"c": time, "p": UUID}) for time in OUT_OF_RANGE},
    "nested 1100 deep": _cursor("[" * 1100 + "]" * 1100),
    "nested object": _cursor('{"c": ' * 1100 + "1" + "}" * 1100),
    "a list": _cursor([1, 2]),
    "numbers": _cursor({"c": 17, "p": 3}),
    "NUL": _cursor({"c": "2026-01-05T12:00:00Z\x00", "p": UUID}),
    "not base64": "%%%",
    "huge": "A" * 100_000,
}


class TestApiListParameters:
    @pytest.mark.parametrize("cursor", BAD_CURSORS.values(), ids=BAD_CURSORS.keys())
    def test_a_bad_cursor_is_invalid_request(self, api, cursor):
        body = assert_problem(api.get("/api/v1/intents", cursor=cursor), 400, "invalid_request")
        assert body["errors"][0]["parameter"] == "cursor"

    @pytest.mark.parametrize("time", ODD_OFFSETS)
    def test_a_cursor_with_an_odd_offset_is_read_in_utc(self, api, time):
        response = api.get("/api/v1/intents", cursor=_cursor({"c": time, "p": UUID}))
        assert response.status_code == 200
        assert response.json() == {"results": [], "next": None}

    @pytest.mark.parametrize("name", ["created_after", "created_before"])
    @pytest.mark.parametrize("value", ODD_OFFSETS)
    def test_a_time_filter_with_an_odd_offset_is_read_in_utc(self, api, name, value):
        assert api.get("/api/v1/intents", **{name: value}).status_code == 200

    @pytest.mark.parametrize("value", ["2026-01-05T12:00:00+99:99", "9" * 5000])
    @pytest.mark.parametrize("name", ["created_after", "created_before"])
    def test_a_time_filter_that_is_no_date_time_is_invalid_request(self, api, name, value):
        body = assert_problem(api.get("/api/v1/intents", **{name: value}), 400, "invalid_request")
        assert body["errors"][0]["parameter"] == name

    @pytest.mark.parametrize("value", OUT_OF_RANGE)
    def test_a_time_filter_at_or_past_the_calendar_ends_bounds_nothing_stored(
        self, api, submit, value
    ):
        """The schema allows any date-time: one whose offset overflows UTC is clamped."""
        created = submit().json()
        name = "created_after" if value.startswith("0001") else "created_before"
        response = api.get("/api/v1/intents", **{name: value})
        assert response.status_code == 200
        assert [row["id"] for row in response.json()["results"]] == [created["id"]]
        other = "created_before" if name == "created_after" else "created_after"
        assert api.get("/api/v1/intents", **{other: value}).json()["results"] == []

    @pytest.mark.parametrize(
        "name", ["status", "target", "created_after", "created_before", "limit", "cursor", "x\x00"]
    )
    def test_nul_in_any_parameter_is_invalid_request(self, api, name):
        assert_problem(api.get("/api/v1/intents", **{name: "a\x00b"}), 400, "invalid_request")

    def test_a_good_cursor_still_pages(self, api):
        cursor = _cursor({"c": "2026-01-05T12:00:00+02:00", "p": UUID})
        response = api.get("/api/v1/intents", cursor=cursor)
        assert response.status_code == 200
        assert response.json() == {"results": [], "next": None}


@pytest.fixture
def superuser_client(client):
    user, device = create_staff_user("root", superuser=True)
    verified_login(client, user, device)
    return client


def _changelists():
    for model in admin.site._registry:
        yield f"/admin/{model._meta.app_label}/{model._meta.model_name}/"


class TestAdminParameters:
    @pytest.mark.parametrize("url", [*_changelists(), "/admin/audit/auditevent/export/"])
    @pytest.mark.parametrize(
        "params",
        [{"q": "a\x00b"}, {"status": "\x00"}, {"o": "\x00"}, {"e\x00": "1"}, {"format": "csv\x00"}],
        ids=["search", "filter", "ordering", "name", "format"],
    )
    def test_nul_in_a_filter_or_search_is_a_400(self, superuser_client, url, params):
        response = superuser_client.get(url, params)
        assert response.status_code == 400, url
        assert b"NUL" in response.content

    def test_nul_in_the_dashboard_window_is_a_400(self, superuser_client):
        assert superuser_client.get("/admin/operations/", {"hours": "1\x00"}).status_code == 400

    def test_an_odd_date_filter_is_refused_by_the_admin_not_a_500(self, superuser_client):
        response = superuser_client.get(
            "/admin/intents/intent/", {"created_at__gte": "0001-01-01 00:00:00+23:59"}
        )
        assert response.status_code in (200, 302, 400)
