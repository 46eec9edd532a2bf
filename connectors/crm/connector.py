"""The CRM connector: incremental queryAll on LastModifiedDate with a (LastModifiedDate, Id) keyset, and
upserts by Hub_Id__c through sObject Collections (per-record results; a batch may partly fail)."""

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
    parse_remote_datetime,
)

from . import mapping
from .client import CrmClient, QueryLocatorExpired


def soql_datetime(value: dt.datetime) -> str:
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def soql_text(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def pull_where(*, since: dt.datetime | None, after: Cursor | None, extra: str | None) -> str:
    """The WHERE clause of an incremental query.

    `since` (cursor time minus the overlap window) is an inclusive bound: rows sharing the cursor's
    timestamp, or committed late with an earlier one, are read again (ingest ignores what it holds).
    `after` is the strict keyset (LastModifiedDate, Id) used to resume inside one run when a query
    locator has expired, so rows sharing one timestamp across pages are neither skipped nor repeated.
    """
    parts = []
    if after is not None and after.ts is not None:
        ts = soql_datetime(after.ts)
        parts.append(f"(LastModifiedDate > {ts} OR (LastModifiedDate = {ts} AND Id > {soql_text(after.id)}))")
    elif since is not None:
        parts.append(f"LastModifiedDate >= {soql_datetime(since)}")
    if extra:
        parts.append(extra)
    return " AND ".join(parts)


class CrmConnector(Connector):
    kind = "crm"
    pull_domains = ("customer", "contract")
    push_domains = tuple(mapping.PUSH)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.client = CrmClient(self.base_url, batch_size=int(self.options.get("batch_size", 2000)))

    @classmethod
    def covers(cls, domain: str) -> set[str]:
        return mapping.PUSH[domain].covers() if domain in mapping.PUSH else set()

    def pull(self, *, domain: str, cursor: Cursor, overlap: dt.timedelta) -> Iterator[PullPage]:
        m = mapping.PULL[domain]
        fields = ["Id", "LastModifiedDate", "IsDeleted", *sorted({f.remote for f in m.fields})]
        if domain == "contract":
            fields.append("StageName")
        since, after = cursor.since(overlap), None
        for _ in range(1000):  # each round resumes after an expired locator
            where = pull_where(since=since, after=after, extra=mapping.PULL_FILTER.get(domain))
            soql = f"SELECT {', '.join(fields)} FROM {m.remote_object}"
            soql += f" WHERE {where}" if where else ""
            soql += " ORDER BY LastModifiedDate, Id"
            try:
                for records in self.client.query(soql, all_rows=True):
                    if not records:
                        continue
                    payloads = [
                        (
                            f"{m.remote_object} {r.get('Id')}",
                            {
                                "source_id": r.get("Id"),
                                "updated_at": r.get("LastModifiedDate"),
                                "deleted": bool(r.get("IsDeleted")),
                                "attributes": m.to_attributes(r),
                            },
                        )
                        for r in records
                    ]
                    envelopes, errors = envelopes_parse(domain, payloads)
                    last = records[-1]
                    position = Cursor(ts=parse_remote_datetime(last["LastModifiedDate"]), id=last["Id"])
                    yield PullPage(domain=domain, envelopes=envelopes, cursor=position, errors=errors)
                    after = position
                return
            except QueryLocatorExpired:
                if after is None:
                    raise
                continue
        raise TransportError("query locators kept expiring; try a smaller batch_size", permanent=False)

    def push(self, items: list[PushItem]) -> list[PushResult]:
        results: list[PushResult] = []
        by_domain: dict[str, list[PushItem]] = {}
        for item in items:
            by_domain.setdefault(item.domain, []).append(item)
        for domain, group in by_domain.items():
            m = mapping.PUSH[domain]
            for start in range(0, len(group), 200):
                chunk, lost = self.held(group[start : start + 200])
                results.extend(lost)
                if not chunk:
                    continue
                bodies = [self._body(m, item) for item in chunk]
                if len(chunk) == 1:
                    results.append(self._push_one(m, chunk[0], bodies[0]))
                    continue
                try:
                    answers = self.client.composite_upsert(m.remote_object, mapping.EXT_FIELD, bodies)
                except TransportError as exc:
                    results.extend(PushResult(delivery_id=i.delivery_id, error=exc) for i in chunk)
                    continue
                for item, answer in zip(chunk, answers, strict=False):
                    results.append(self._result(item, answer))
        return results

    def _body(self, m, item: PushItem) -> dict:
        body = m.to_remote(item, ref_out=mapping.ref_out)
        body[mapping.EXT_FIELD] = item.golden_id
        body["Hub_Status__c"] = item.status
        return body

    def _push_one(self, m, item: PushItem, body: dict) -> PushResult:
        try:
            remote_id, created = self.client.upsert(m.remote_object, mapping.EXT_FIELD, item.golden_id, body)
        except TransportError as exc:
            return PushResult(delivery_id=item.delivery_id, error=exc)
        return PushResult(delivery_id=item.delivery_id, remote_id=remote_id, created=created)

    @staticmethod
    def _result(item: PushItem, answer: dict) -> PushResult:
        if answer.get("success"):
            return PushResult(delivery_id=item.delivery_id, remote_id=answer.get("id", ""),
                              created=bool(answer.get("created")))  # fmt: skip
        errors = answer.get("errors") or [{"statusCode": "UNKNOWN", "message": "no error given"}]
        code = errors[0].get("statusCode", "UNKNOWN")
        message = "; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in errors)
        error = TransportError(message, permanent=code not in mapping.TRANSIENT_ITEM_ERRORS)
        return PushResult(delivery_id=item.delivery_id, error=error)

    def close(self) -> None:
        self.client.close()
