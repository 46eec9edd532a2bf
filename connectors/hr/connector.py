"""The HR connector: one report call with Updated_Since (inclusive, with overlap), cut into pages so each
page's ingest and cursor commit together. Rescinded workers arrive as deletions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from connectors.base import Connector, Cursor, PullPage, envelopes_parse
from connectors.base import parse_remote_datetime as parse_ts

from . import mapping
from .client import HrClient


class HrConnector(Connector):
    kind = "hr"
    pull_domains = ("resource",)
    push_domains = ()

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.client = HrClient(self.base_url, tenant=self.options.get("tenant", "acme"),
                               report=self.options.get("report", "Workers"))  # fmt: skip
        self.page_size = int(self.options.get("page_size", 500))

    def pull(self, *, domain: str, cursor: Cursor, overlap: dt.timedelta) -> Iterator[PullPage]:
        m = mapping.PULL[domain]
        since = cursor.since(overlap)
        rows = self.client.workers(updated_since=since.isoformat() if since else None)
        rows.sort(key=lambda w: (parse_ts(w["Last_Updated"]), str(w["Worker_ID"])))
        for start in range(0, len(rows), self.page_size):
            chunk = rows[start : start + self.page_size]
            payloads = [
                (
                    f"worker {w.get('Worker_ID')}",
                    {
                        "source_id": w.get("Worker_ID"),
                        "updated_at": w.get("Last_Updated"),
                        "deleted": bool(w.get("Rescinded")),
                        "attributes": m.to_attributes(w),
                    },
                )
                for w in chunk
            ]
            envelopes, errors = envelopes_parse(domain, payloads)
            last = chunk[-1]
            yield PullPage(domain=domain, envelopes=envelopes, errors=errors,
                           cursor=Cursor(ts=parse_ts(last["Last_Updated"]), id=str(last["Worker_ID"])))  # fmt: skip

    def close(self) -> None:
        self.client.close()
