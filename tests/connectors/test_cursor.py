"""Cursor logic: the compound (timestamp, id) position, the inclusive overlap bound, the SOQL keyset, and
the sandbox's evaluation of it when many rows share one timestamp."""

import datetime as dt

from connectors.base import Cursor, parse_remote_datetime
from connectors.crm.connector import pull_where
from connectors.sandbox.query import Where, parse_select

TS = dt.datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=dt.UTC)


def test_cursor_orders_by_timestamp_then_id():
    base = Cursor(ts=TS, id="001B")
    assert Cursor(ts=TS, id="001C").after(base)
    assert not Cursor(ts=TS, id="001A").after(base)
    assert Cursor(ts=TS + dt.timedelta(milliseconds=1), id="000").after(base)
    assert not base.after(base)
    assert base.after(Cursor())
    assert not Cursor().after(base)


def test_cursor_round_trips_through_json():
    cursor = Cursor(ts=TS, id="001B")
    assert Cursor.from_json(cursor.as_json()) == cursor
    assert Cursor.from_json({}) == Cursor()
    assert Cursor.from_json(None) == Cursor()


def test_next_pull_starts_an_overlap_window_before_the_cursor():
    cursor = Cursor(ts=TS, id="x")
    assert cursor.since(dt.timedelta(seconds=120)) == TS - dt.timedelta(seconds=120)
    assert Cursor().since(dt.timedelta(seconds=120)) is None


def test_remote_timestamps_in_every_offset_style_are_the_same_instant():
    a = parse_remote_datetime("2026-03-01T12:00:00.123+0000")
    b = parse_remote_datetime("2026-03-01T12:00:00.123Z")
    c = parse_remote_datetime("2026-03-01T13:00:00.123+01:00")
    assert a == b == c == TS


def test_first_pull_reads_everything_and_later_pulls_are_inclusive_of_the_bound():
    assert pull_where(since=None, after=None, extra=None) == ""
    clause = pull_where(since=TS, after=None, extra="StageName = 'Closed Won'")
    assert clause == "LastModifiedDate >= 2026-03-01T12:00:00.123Z AND StageName = 'Closed Won'"


def test_keyset_resumes_inside_a_timestamp_by_id():
    clause = pull_where(since=None, after=Cursor(ts=TS, id="001x'"), extra=None)
    assert clause == (
        "(LastModifiedDate > 2026-03-01T12:00:00.123Z OR "
        "(LastModifiedDate = 2026-03-01T12:00:00.123Z AND Id > '001x\\'')"
        ")"
    )


def _rows(n: int, ts: str) -> list[dict]:
    return [{"Id": f"001{i:05d}", "LastModifiedDate": ts} for i in range(n)]


def test_keyset_over_rows_sharing_one_timestamp_reads_each_row_exactly_once():
    ts = "2026-03-01T12:00:00.123+0000"
    rows = _rows(500, ts) + _rows(0, ts)
    seen, after = [], None
    for _ in range(10):
        where = Where(pull_where(since=TS - dt.timedelta(seconds=5), after=after, extra=None))
        page = sorted((r for r in rows if where(r)), key=lambda r: (r["LastModifiedDate"], r["Id"]))[:200]
        if not page:
            break
        seen.extend(r["Id"] for r in page)
        after = Cursor(ts=parse_remote_datetime(page[-1]["LastModifiedDate"]), id=page[-1]["Id"])
    assert len(seen) == 500
    assert len(set(seen)) == 500


def test_inclusive_bound_catches_a_row_committed_late_with_an_earlier_timestamp():
    cursor = Cursor(ts=TS, id="001z")
    late = {"Id": "001a", "LastModifiedDate": "2026-03-01T11:59:59.000Z"}
    assert Where(pull_where(since=cursor.since(dt.timedelta(seconds=5)), after=None, extra=None))(late)
    assert not Where(pull_where(since=cursor.since(dt.timedelta(0)), after=None, extra=None))(late)


def test_soql_select_is_parsed():
    q = parse_select("SELECT Id, Name FROM Account WHERE IsDeleted = false ORDER BY LastModifiedDate, Id LIMIT 5")
    assert q["object"] == "Account"
    assert q["fields"] == ["Id", "Name"]
    assert q["order"] == ["LastModifiedDate", "Id"]
    assert q["limit"] == 5
    assert q["where"]({"IsDeleted": False}) and not q["where"]({"IsDeleted": True})
