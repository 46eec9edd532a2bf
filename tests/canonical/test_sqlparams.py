"""canonical.sqlparams: big list parameters written out once give the database exactly the values a list would."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection

from canonical.sqlparams import id_array, text_array

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

AWKWARD = [
    "plain",
    "",
    "with space",
    'double " quote',
    "single ' quote",
    "back\\slash",
    "{braces}",
    "comma, here",
    "NULL",
    "tab\there",
    "new\nline",
    "unicode é ß 東京 🙂",
    "\u2028 line separator",
]


def _rows(sql: str, params: list) -> list:
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def test_text_array_round_trips_in_order():
    got = _rows(
        "SELECT a, b, n FROM ROWS FROM (json_array_elements_text(%s::json), json_array_elements_text(%s::json)) "
        "WITH ORDINALITY AS v(a, b, n) ORDER BY n",
        [text_array(AWKWARD), text_array(list(reversed(AWKWARD)))],
    )
    assert [(a, b) for a, b, _ in got] == list(zip(AWKWARD, reversed(AWKWARD), strict=True))
    assert [n for _, _, n in got] == list(range(1, len(AWKWARD) + 1))


def test_id_array_of_ints_and_uuids():
    ints = [1, 2**62, 7, 7]
    assert id_array(ints) == "{1,4611686018427387904,7,7}"
    assert [r[0] for r in _rows("SELECT unnest(%s::bigint[])", [id_array(ints)])] == ints
    uuids = [uuid.uuid4() for _ in range(3)]
    assert [r[0] for r in _rows("SELECT unnest(%s::uuid[])", [id_array(uuids)])] == uuids
    assert _rows("SELECT cardinality(%s::bigint[])", [id_array([])]) == [(0,)]


@pytest.mark.parametrize(
    "values",
    [
        [1, True],  # a bool is an int to isinstance, not here: it would be written "True"
        [uuid.uuid4(), "not-a-uuid"],
        ["1", "2"],
        [1, uuid.uuid4()],
    ],
)
def test_id_array_leaves_anything_else_to_the_driver(values):
    assert id_array(values) == values
