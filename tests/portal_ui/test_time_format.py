"""One human time format everywhere: seconds and the zone, on fields, tables and commands."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.admin.utils import display_for_value
from django.template import engines

from portal.timefmt import format_instant

INSTANT = dt.datetime(2026, 12, 3, 10, 27, 49, 123456, tzinfo=dt.UTC)
EXPECTED = "2026-12-03 10:27:49 UTC"


def test_admin_fields_and_columns_show_seconds_and_the_zone():
    # The admin's read-only fields and list columns both render through display_for_value.
    assert display_for_value(INSTANT, "-") == EXPECTED


def test_templates_render_the_same_format():
    template = engines["django"].from_string('{{ t }}|{{ t|date:"DATETIME_FORMAT" }}')
    assert template.render({"t": INSTANT}) == f"{EXPECTED}|{EXPECTED}"


def test_python_code_formats_the_same_in_utc():
    later = INSTANT.astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert format_instant(later) == EXPECTED
    assert format_instant(None) == "-"
    with pytest.raises(ValueError, match="naive"):
        format_instant(INSTANT.replace(tzinfo=None))
