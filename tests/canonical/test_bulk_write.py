"""The bulk path's writer (canonical/services/bulk.py, `_prep_column` and the COPY helpers) hands the database
what Django would: each column's values as `Field.get_db_prep_save` returns them, and rows as bulk_create
writes the same instances (defaults per row, auto_now times, serial ids)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
import warnings
from decimal import Decimal

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, connections

from canonical.domains import DOMAINS, get_domain
from canonical.models import (
    ChangeEvent,
    CrossReference,
    DataException,
    MatchKey,
    SourceRecord,
    SourceStatus,
)
from canonical.services import bulk
from canonical.services.bulk import source_records_ingest_bulk
from canonical.services.ingest import envelope_parse
from connectors.models import Delivery, FeedEntry
from stewardship.models import ReviewTask

pytestmark = pytest.mark.django_db

AWARE = dt.datetime(2026, 2, 3, 4, 5, 6, 789, tzinfo=dt.UTC)
VALUES = [
    None,
    "",
    "text",
    SourceStatus.APPLIED,  # a str enum member
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "12345678-1234-5678-1234-567812345678",
    0,
    7,
    True,
    False,
    1.5,
    Decimal("1.50"),
    AWARE,
    AWARE.astimezone(dt.timezone(dt.timedelta(hours=2))),
    dt.datetime(2026, 2, 3, 4, 5, 6),  # naive
    dt.date(2026, 2, 3),
    {"a": [1, "x", None], "b": {"c": True}},
    [1, 2],
    # JSON that orjson (the JSON columns' encoder) writes as json.dumps does, or refuses and json.dumps writes
    "Müller ☃ Zürich",
    {"é": ["ü", 1e16, 0.1, True, 1]},
    {
        "d": Decimal("2.50"),
        "t": AWARE,
        "u": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "day": dt.date(2026, 2, 3),
    },
    {1: "an int key", None: "a None key"},
    [2**70],
    "\ud800 a lone surrogate",
    {"a set": {1}},
]


def written_models() -> list:
    models = [SourceRecord, CrossReference, MatchKey, DataException, ChangeEvent, FeedEntry, Delivery, ReviewTask]
    models += [get_domain(d).model for d in DOMAINS]
    return models + [m.history.model for m in models if hasattr(m, "history")]


def json_value(text: str):
    """The JSON value of a text, each part tagged with its type (so true is not 1, nor 1.0 the int 1): what a jsonb
    column stores of it, whatever the spaces, the order of an object's keys or the escapes of the text."""

    def tagged(value):
        if isinstance(value, dict):
            return ("object", sorted((k, tagged(v)) for k, v in value.items()))
        if isinstance(value, list):
            return ("array", [tagged(v) for v in value])
        return (type(value).__name__, value)

    return ("json", tagged(json.loads(text)))


def comparable(value, field=None):
    """A prepared value as COPY writes it: a Jsonb (get_db_prep_save's value of a JSONField on PostgreSQL), or the
    text given for a JSONField, as its JSON value (json_value: what the jsonb column stores); an Int2/Int4/Int8 (of
    an integer field) as its int — COPY writes them as it writes that text as a str and that int (the shortcuts'
    values; checked below)."""
    from django.db.models import JSONField
    from psycopg.types.json import Jsonb
    from psycopg.types.numeric import Int2, Int4, Int8

    if isinstance(value, Jsonb):
        return json_value(value.dumps(value.obj))
    if isinstance(value, str) and isinstance(field, JSONField):
        return json_value(value)
    if type(value) in (Int2, Int4, Int8):
        return (int, int(value))
    return (type(value), value)


@pytest.mark.postgres
def test_copy_writes_the_shortcuts_values_as_it_writes_get_db_prep_saves():
    """COPY (text format) writes the same bytes for a Jsonb and for its JSON text given as a str, and for an
    Int2/Int4/Int8 and its int."""
    from psycopg.adapt import PyFormat, Transformer
    from psycopg.types.json import Jsonb
    from psycopg.types.numeric import Int2, Int4, Int8

    conn = connections[DEFAULT_DB_ALIAS]
    conn.ensure_connection()
    tx = Transformer(conn.connection)

    def written(value) -> bytes:
        return bytes(tx.dump_sequence([value], [PyFormat.TEXT])[0])

    jsons = 0
    for value in VALUES:
        try:
            jsonb = conn.ops.adapt_json_value(value, None)
            text = jsonb.dumps(jsonb.obj)
        except TypeError:  # not JSON-serialisable: neither way writes it
            continue
        assert isinstance(jsonb, Jsonb) and written(jsonb) == written(text), value
        jsons += 1
    assert jsons > 10
    for n in (0, 7, -3, 2**15 - 1, 2**31 - 1):
        for wrapper in (Int2, Int4, Int8):
            assert written(wrapper(n)) == written(n), (wrapper, n)
    for internal_type in ("IntegerField", "PositiveIntegerField", "BigIntegerField", "SmallIntegerField"):
        assert type(conn.ops.adapt_integerfield_value(5, internal_type)) in (Int2, Int4, Int8)


def reference(field, values, conn):
    """What get_db_prep_save gives for each value (or the exception it raises), value by value."""
    out = []
    for v in values:
        try:
            out.append(comparable(field.get_db_prep_save(v, conn), field))
        except Exception as e:  # noqa: BLE001 - the same failure is expected from the shortcut
            out.append(("raises", type(e)))
    return out


def prepared(field, values, conn):
    """`_prep_column`'s result, or (where get_db_prep_save raises for a value) the exception of the first such."""
    expected = reference(field, values, conn)
    failed = [r for r in expected if r[0] == "raises"]
    try:
        got = [comparable(v, field) for v in bulk._prep_column(field, list(values), conn)]
    except Exception as e:  # noqa: BLE001
        return expected if failed and failed[0] == ("raises", type(e)) else [("raises", type(e))]
    return got


def test_prep_column_gives_what_get_db_prep_save_gives_for_every_written_field():
    conn = connections[DEFAULT_DB_ALIAS]
    checked = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # naive datetimes: the same warning both ways
        for model in written_models():
            for f in model._meta.concrete_fields:
                for v in VALUES:
                    assert prepared(f, [v], conn) == reference(f, [v], conn), (model.__name__, f.name, v)
                    assert prepared(f, [None, v, v], conn) == reference(f, [None, v, v], conn), (f.name, v)
                    checked += 1
                ok = [v for v, r in zip(VALUES, reference(f, VALUES, conn), strict=True) if r[0] != "raises"]
                assert prepared(f, ok, conn) == reference(f, ok, conn), (model.__name__, f.name)  # mixed types
    assert checked > 2000


@pytest.mark.parametrize("encoder", [None, DjangoJSONEncoder])
def test_json_texts_are_json_dumps_values(encoder):
    """The JSON columns' texts (orjson's) hold the JSON value json.dumps writes with the field's encoder, and a
    value json.dumps cannot write fails as it does; except a UUID, which orjson writes as DjangoJSONEncoder does
    (no value the hub stores holds one: the record-by-record path would fail on it)."""
    dumps = bulk._json_dumps(encoder)
    written = 0
    for value in VALUES:
        if encoder is None and isinstance(value, uuid.UUID):
            assert json_value(dumps(value)) == json_value(json.dumps(str(value)))
            continue
        try:
            expected = json.dumps(value, cls=encoder)
        except (TypeError, ValueError) as exc:
            with pytest.raises(type(exc)):
                dumps(value)
            continue
        assert json_value(dumps(value)) == json_value(expected), value
        written += 1
    assert written >= (16 if encoder else 10)
    # a float that is not finite: json.dumps writes what PostgreSQL refuses, orjson null (documented in _json_dumps)
    for value in (float("nan"), float("inf"), -float("inf")):
        assert dumps({"x": value}) == '{"x":null}'


def test_common_fields_take_a_shortcut():
    """The fields a flush writes most are converted by a shortcut, not value by value (the point of it)."""
    conn = connections[DEFAULT_DB_ALIAS]
    native_uuid = conn.features.has_native_uuid_field
    meta = SourceRecord._meta
    kinds = {name: bulk._kind(meta.get_field(name))[0] for name in ("id", "system", "attributes", "golden_id")}
    kinds |= {name: bulk._kind(meta.get_field(name))[0] for name in ("deleted", "received_at", "status")}
    assert kinds == {
        "id": "autopk",
        "system": "same",  # a foreign key to a SlugField
        "attributes": "json",
        "golden_id": "uuid" if native_uuid else "",
        "deleted": "bool",
        "received_at": "datetime",
        "status": "same",
    }
    assert bulk._kind(CrossReference._meta.get_field("source_record"))[0] == "autopk"
    assert bulk._kind(ChangeEvent._meta.get_field("version"))[0] == "int"
    assert bulk._kind(get_domain("contract").model._meta.get_field("total_value"))[0] == ""  # DecimalField
    # the shortcut is taken: a text column comes back as it is, not value by value
    column = ["a", "b", SourceStatus.APPLIED]
    assert bulk._prep_column(meta.get_field("source_id"), column, conn) is column


def _envelopes(n: int, spec) -> list:
    rows = []
    for i in range(n):
        name = f"Firm {i // 2} GmbH"  # pairs: a new record, then one that links to it
        rows.append(
            {
                "source_id": f"W{i}",
                "updated_at": (AWARE + dt.timedelta(minutes=i)).isoformat(),
                "deleted": False,
                "attributes": {"name": name, "website": f"firm{i // 2}.example.com", "country": "DE"},
            }
        )
    return [envelope_parse(r, spec=spec) for r in rows]


@pytest.mark.postgres
def test_every_copied_column_is_what_get_db_prep_save_gives(monkeypatch, audit):
    """A bulk ingest on PostgreSQL: every column it copies, checked against get_db_prep_save value by value."""
    conn = connections[DEFAULT_DB_ALIAS]
    seen: dict[str, int] = {}
    real = bulk._prep_column

    def checked(field, values, connection):
        out = real(field, values, connection)
        assert [comparable(v, field) for v in out] == reference(field, values, connection), field
        seen[field.model._meta.db_table] = seen.get(field.model._meta.db_table, 0) + len(values)
        return out

    monkeypatch.setattr(bulk, "_prep_column", checked)
    spec = get_domain("customer")
    results = source_records_ingest_bulk(system="crm", domain="customer", envelopes=_envelopes(40, spec))
    assert {r.outcome for r in results} == {"created", "linked"}
    for table in ("canonical_sourcerecord", "canonical_customer", "canonical_historicalcustomer"):
        assert seen.get(table, 0) > 0, table
    for table in ("canonical_crossreference", "canonical_historicalcrossreference", "canonical_matchkey"):
        assert seen.get(table, 0) > 0, table
    assert seen.get("canonical_changeevent", 0) > 0 and seen.get("connectors_feedentry", 0) > 0
    assert conn.vendor == "postgresql"


def test_written_rows_carry_their_times_and_ids_into_history(audit):
    """Source records and cross-references written as columns: each one's auto_now times taken as it is
    written, its id in its cross-reference, and the cross-reference's history row a copy of the row."""
    spec = get_domain("customer")
    source_records_ingest_bulk(system="crm", domain="customer", envelopes=_envelopes(30, spec))
    srs = list(SourceRecord.objects.filter(source_id__startswith="W").order_by("id"))
    assert len(srs) == 30
    assert all(sr.received_at <= sr.processed_at for sr in srs)
    assert [sr.received_at for sr in srs] == sorted(sr.received_at for sr in srs)
    assert all(sr.status == SourceStatus.APPLIED and sr.errors == {} and not sr.deleted for sr in srs)
    for sr in srs:
        xref = CrossReference.objects.get(source_record=sr)
        assert (xref.system_id, xref.domain, xref.source_id, xref.golden_id) == (
            "crm",
            "customer",
            sr.source_id,
            sr.golden_id,
        )
        (h,) = xref.history.all()
        assert (h.id, h.source_record_id, h.golden_id, h.created_at, h.updated_at, h.history_type) == (
            xref.id,
            sr.id,
            xref.golden_id,
            xref.created_at,
            xref.updated_at,
            "+",
        )
        assert h.history_date >= xref.updated_at >= xref.created_at >= sr.processed_at
        assert (h.history_actor, h.history_channel, h.history_change_reason) == ("pytest", "job", "test")
        keys = set(MatchKey.objects.filter(source_record=sr).values_list("golden_id", flat=True))
        assert keys == {sr.golden_id}


def test_insert_columns_fills_defaults_row_by_row_and_auto_now_times():
    """A field not given: its default, called for each row (as each instance would); auto_now_add: the time."""
    golden = [uuid.uuid4() for _ in range(3)]
    columns = bulk._insert_columns(
        ChangeEvent,
        3,
        {
            "type": ["golden.created"] * 3,
            "domain": ["customer"] * 3,
            "golden_id": golden,
            "version": [1, 2, 3],
            "changed_fields": [["name"]] * 3,
            "data": [{"n": i} for i in range(3)],
            "origin_system_id": ["crm", None, "erp"],
        },
        ids=True,
    )
    events = list(ChangeEvent.objects.filter(golden_id__in=golden).order_by("id"))
    assert [e.id for e in events] == columns["id"] == sorted(columns["id"])
    assert len({e.event_id for e in events}) == 3  # uuid4 per row, not one for all
    assert [(e.version, e.data, e.origin_system_id, e.actor) for e in events] == [
        (1, {"n": 0}, "crm", ""),
        (2, {"n": 1}, None, ""),
        (3, {"n": 2}, "erp", ""),
    ]
    assert [e.occurred_at for e in events] == columns["occurred_at"]
    assert all(isinstance(t, dt.datetime) and t.tzinfo is not None for t in columns["occurred_at"])
