"""The ERP connector: SuiteQL incremental queries on lastmodifieddate (inclusive, with overlap), ordered by
(lastmodifieddate, id); upsert by externalId one record at a time (NetSuite REST has no bulk upsert)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from connectors.base import (
    Connector,
    Cursor,
    PullPage,
    PushItem,
    PushResult,
    TransportError,
    envelopes_parse,
    push_each,
)
from connectors.base import parse_remote_datetime as parse_ts

from . import mapping
from .client import ErpClient


def suiteql_datetime(value: dt.datetime) -> str:
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


class ErpConnector(Connector):
    kind = "erp"
    pull_domains = ("legal_entity", "customer", "rate_card", "contract")
    push_domains = tuple(mapping.PUSH)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.client = ErpClient(self.base_url, page_size=int(self.options.get("page_size", 1000)))

    @classmethod
    def covers(cls, domain: str) -> set[str]:
        return mapping.PUSH[domain].covers() if domain in mapping.PUSH else set()

    def pull(self, *, domain: str, cursor: Cursor, overlap: dt.timedelta) -> Iterator[PullPage]:
        m = mapping.PULL[domain]
        since = cursor.since(overlap)
        # Paged by keyset (each page starts after the last row read), not by offset: a row changed while the pull
        # runs moves to the end of the order, and with offsets the rows after it moved back a place, one of them
        # into a page already read, and was never returned (its time older than the cursor the pull then saved).
        after: tuple[str, str] | None = None
        while True:
            conditions = [f"lastmodifieddate >= {suiteql_datetime(since)}"] if since is not None else []
            if after is not None:
                ts, rid = after
                rid = rid.replace("'", "''")
                conditions.append(f"(lastmodifieddate > {ts} OR (lastmodifieddate = {ts} AND id > '{rid}'))")
            q = f"SELECT * FROM {m.remote_object}"
            if conditions:
                q += " WHERE " + " AND ".join(conditions)
            q += " ORDER BY lastmodifieddate, id"
            items, more = self.client.suiteql_page(q)
            if not items:
                return
            payloads = [
                (
                    f"{m.remote_object} {i.get('id')}",
                    {
                        "source_id": str(i.get("tranid") or i.get("id") or ""),
                        "updated_at": i.get("lastmodifieddate"),
                        "deleted": i.get("isinactive") == "T",
                        "attributes": m.to_attributes(i),
                    },
                )
                for i in items
            ]
            envelopes, errors = envelopes_parse(domain, payloads)
            last = items[-1]
            yield PullPage(domain=domain, envelopes=envelopes, errors=errors,
                           cursor=Cursor(ts=parse_ts(last["lastmodifieddate"]), id=str(last["id"])))  # fmt: skip
            if not more:
                return
            after = (suiteql_datetime(parse_ts(last["lastmodifieddate"])), str(last["id"]))

    def push(self, items: list[PushItem]) -> list[PushResult]:
        def one(item: PushItem) -> str:
            m = mapping.PUSH[item.domain]
            body = m.to_remote(item, ref_out=mapping.ref_out)
            body["isInactive"] = item.status != "active"
            if item.remote_id and item.remote_id.isascii() and item.remote_id.isdigit():
                # the record came from the ERP (an internal id): update it, and tag it with the hub's id; an upsert
                # by external id would not find it and create a second one
                try:
                    return self.client.update(m.remote_object, item.remote_id, item.golden_id, body)
                except TransportError as exc:
                    if exc.status != 404:
                        raise  # gone from the ERP since: made again below, as before
                    _, lost = self.held([item])  # a second request: held for it too
                    if lost:
                        raise lost[0].error from exc
            return self.client.upsert(m.remote_object, item.golden_id, body)

        return push_each(items, one, self)

    def close(self) -> None:
        self.client.close()
