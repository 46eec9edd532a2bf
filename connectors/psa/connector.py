"""The PSA connector: paged `updated_after` pulls (archived workspaces arrive as deletions) and workspace
upserts from contracts, returning the project code."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from connectors.base import Connector, Cursor, PullPage, PushItem, PushResult, envelopes_parse, push_each
from connectors.base import parse_remote_datetime as parse_ts

from . import mapping
from .client import PsaClient


class PsaConnector(Connector):
    kind = "psa"
    pull_domains = ("project",)
    push_domains = tuple(mapping.PUSH)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.client = PsaClient(self.base_url, per_page=int(self.options.get("per_page", 200)))

    @classmethod
    def covers(cls, domain: str) -> set[str]:
        return mapping.PUSH[domain].covers() if domain in mapping.PUSH else set()

    def pull(self, *, domain: str, cursor: Cursor, overlap: dt.timedelta) -> Iterator[PullPage]:
        m = mapping.PULL[domain]
        since = cursor.since(overlap)
        # Kantata's updated_after is exclusive: step back a millisecond to make the bound inclusive. Paged by
        # keyset: each request starts from the newest change read so far (again a millisecond back, the rows read
        # at that instant skipped by id), not by page number: a workspace changed while the pull runs moves to the
        # end of the order, and with page numbers the rows after it moved back a place, one into a page already
        # read, never to be pulled (its time older than the cursor then saved).
        after = (since - dt.timedelta(milliseconds=1)).isoformat() if since else None
        seen: set[tuple[str, str]] = set()  # (id, updated_at): a workspace changed since it was read is new again
        page = 1
        while True:
            batch, page_count = self.client.workspaces_page(updated_after=after, page=page)
            rows = [w for w in batch if (str(w.get("id")), str(w.get("updated_at"))) not in seen]
            seen.update((str(w.get("id")), str(w.get("updated_at"))) for w in rows)
            if page >= page_count and not rows:
                return
            if not rows:  # a page of rows read already (many changed within one millisecond): the next page
                page += 1
                continue
            payloads = [
                (
                    f"workspace {w.get('id')}",
                    {
                        "source_id": w.get("project_code") or "",
                        "updated_at": w.get("updated_at"),
                        "deleted": bool(w.get("archived")),
                        "attributes": m.to_attributes(w),
                    },
                )
                for w in rows
            ]
            envelopes, errors = envelopes_parse(domain, payloads)
            newest = max(rows, key=lambda w: (w["updated_at"], str(w["id"])))
            yield PullPage(domain=domain, envelopes=envelopes, errors=errors,
                           cursor=Cursor(ts=parse_ts(newest["updated_at"]), id=str(newest["id"])))  # fmt: skip
            if page >= page_count:
                return
            after = (parse_ts(newest["updated_at"]) - dt.timedelta(milliseconds=1)).isoformat()
            page = 1

    def push(self, items: list[PushItem]) -> list[PushResult]:
        def one(item: PushItem) -> str:
            m = mapping.PUSH[item.domain]
            body = m.to_remote(item, ref_out=mapping.ref_out)
            body["title"] = body.get("title") or item.values.get("contract_number") or item.golden_id
            body["external_id"] = item.golden_id
            body["archived"] = item.status != "active"
            if item.known:
                # The workspace exists: its title, budget, dates and currency are the project's, which the PSA owns
                # (the delivery team plans there); a contract's change does not overwrite them. They seed a new one.
                for name in mapping.PROJECT_OWNED_REMOTE:
                    body.pop(name, None)
            return self.client.workspace_upsert(body)["project_code"]

        return push_each(items, one, self)

    def close(self) -> None:
        self.client.close()
