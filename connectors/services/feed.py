"""The change feed: outbox events in commit-safe order, for downstream systems that read at their pace.

A cursor is `<xid>.<event id>`. On PostgreSQL only events whose writing transaction is older than every
transaction still running are served, in (xid, id) order: a transaction that commits late has an xid at
or above that bound, so it is served later and lands after the reader's cursor, never behind it. On
SQLite writers are serialised and ids are commit order.

The bound is the oldest in-progress xid of the reader's snapshot (`pg_snapshot_xip`), leaving out only
transactions positively known to run in *another* database of the cluster (pg_stat_activity,
pg_prepared_xacts): a long transaction elsewhere must not stall this feed, and one that cannot be placed
counts as ours (it can only delay, never skip). With none in progress the bound is the snapshot's xmax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import connection
from django.db.models import BigIntegerField

from canonical.models import ChangeEvent
from connectors.models import FeedEntry
from connectors.webhooks.mapping import cloudevent

_CURSOR = re.compile(r"^([0-9]{1,19})\.([0-9]{1,19})\Z")  # ASCII digits: \d would take "١.١" too
MAX_LIMIT = 1000


_PG_FEED = """
WITH snap AS (SELECT pg_current_snapshot() AS s),
elsewhere AS (
    SELECT backend_xid::text::bigint AS x FROM pg_stat_activity
     WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database()
    UNION ALL
    SELECT transaction::text::bigint FROM pg_prepared_xacts WHERE database <> current_database()
),
bound AS (
    SELECT COALESCE(
        (SELECT min(x::text::bigint) FROM snap, pg_snapshot_xip(snap.s) AS x
          WHERE x::text::bigint %% 4294967296 NOT IN (SELECT x FROM elsewhere)),
        (SELECT pg_snapshot_xmax(s)::text::bigint FROM snap)
    ) AS b
)
SELECT f.xid, f.event_id FROM connectors_feedentry f, bound
 WHERE (f.xid, f.event_id) > (%s, %s) AND f.xid < bound.b
 ORDER BY f.xid, f.event_id LIMIT %s
"""


class CursorError(ValueError):
    pass


def cursor_parse(text: str | None) -> tuple[int, int]:
    if text in (None, ""):
        return (-1, 0)
    m = _CURSOR.match(text)
    if not m or max(int(m.group(1)), int(m.group(2))) > BigIntegerField.MAX_BIGINT:  # both parts are bigints
        raise CursorError("not a feed cursor: use the `next_cursor` of the previous page (or leave it out)")
    return int(m.group(1)), int(m.group(2))


@dataclass
class FeedPage:
    events: list[dict]
    next_cursor: str
    has_more: bool


def feed_read(*, after: str | None, limit: int, domains: set[str] | None = None, personal: bool = False) -> FeedPage:
    xid, event_id = cursor_parse(after)
    limit = max(1, min(limit, MAX_LIMIT))
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute(_PG_FEED, [xid, event_id, limit + 1])
            rows = cur.fetchall()
    else:
        qs = FeedEntry.objects.filter(xid=0, event_id__gt=event_id) if xid <= 0 else FeedEntry.objects.none()
        rows = list(qs.order_by("xid", "event_id").values_list("xid", "event_id")[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    events = ChangeEvent.objects.in_bulk([r[1] for r in rows])
    out = []
    for row_xid, row_event in rows:
        event = events[row_event]
        if domains is not None and event.domain not in domains:
            continue
        out.append(cloudevent(event, sequence=f"{row_xid}.{row_event}", personal=personal))
    next_cursor = f"{rows[-1][0]}.{rows[-1][1]}" if rows else (after or "")
    return FeedPage(events=out, next_cursor=next_cursor, has_more=has_more)
