"""The benchmark's raw-SQL INSERTs name every column the database requires.

``make bench`` seeds intents with hand-written SQL (its floors must skip the ORM). Django
keeps field defaults in Python, so a new NOT NULL column without a database default
breaks those INSERTs at bench time, long after the change that added it; this catches it
in the suite instead.
"""

from __future__ import annotations

import re

import pytest

from bench import floor_urls, intake_growth, pg, receipts
from intents.models import Intent

INSERTS = {
    "bench/pg.py INSERT_INTENTS": pg.INSERT_INTENTS,
    "bench/floor_urls.py INSERT_ONE": floor_urls.INSERT_ONE,
    "bench/intake_growth.py INSERT_STORED": intake_growth.INSERT_STORED,
    "bench/receipts.py INSERT_ACCEPTED": receipts.INSERT_ACCEPTED,
}


def required_columns() -> set[str]:
    """Intent columns the database itself needs a value for: NOT NULL, no db default."""
    return {
        str(field.column)
        for field in Intent._meta.concrete_fields
        if not field.null and not field.primary_key and field.db_default is models_not_provided()
    }


def models_not_provided() -> object:
    from django.db.models.fields import NOT_PROVIDED

    return NOT_PROVIDED


@pytest.mark.parametrize("name", sorted(INSERTS))
def test_each_bench_insert_names_every_required_intent_column(name):
    match = re.search(r"INSERT INTO intents_intent \((.*?)\)\s*SELECT", INSERTS[name], re.S)
    assert match, f"{name}: no INSERT INTO intents_intent (...) SELECT"
    named = {column.strip() for column in match.group(1).split(",")}
    missing = required_columns() - named
    assert not missing, f"{name} leaves out NOT NULL columns {sorted(missing)}"
