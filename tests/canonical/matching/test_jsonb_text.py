"""`jsonb_text` gives the text PostgreSQL gives back for a value stored as jsonb (the prepared-features memo's key
for a record written, looked up later by the text the database reads out): the same text, asked of the database."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from canonical.matching.batch import jsonb_text

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

VALUES = [
    {},
    {"name": "Acme", "country": "NL", "website": None, "active": True, "n": 3, "tags": ["a", "b"], "empty": []},
    {"z": 1, "aa": 2, "b": 3, "ab": 4, "é": 5, "ä": 6, "zz": 7, "a": {"yy": [1, {"b": 2, "a": 1}], "x": False}},
    {"name": 'Quote " backslash \\ slash / tab \t newline \n return \r bell \x07 escape \x1b del \x7f'},
    {"name": "Zürich ☃ 東京 😀", "Straße": "ß", "key with spaces": " padded ", "": "empty key"},
    {"customer": {"golden_id": "12345678-1234-5678-1234-567812345678"}, "rate": "120.50", "big": 12345678901234},
    {"negative": -7, "zero": 0, "float": 1.5, "small": 0.25, "list": [None, True, False, "x", 2]},
]


@pytest.mark.parametrize("value", VALUES)
def test_jsonb_text_is_the_text_the_database_gives_back(value):
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::jsonb::text", [json.dumps(value)])
        (database,) = cursor.fetchone()
    assert jsonb_text(value) == database


def test_a_number_written_otherwise_is_only_a_different_text():
    """jsonb keeps numeric's text, not Python's: the memo under jsonb_text's is then not found (never wrong)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::jsonb::text", [json.dumps({"x": 1e16})])
        (database,) = cursor.fetchone()
    assert database == '{"x": 10000000000000000}' != jsonb_text({"x": 1e16})
