"""A client for the Salesforce REST API subset the hub uses: query/queryAll with nextRecordsUrl paging,
upsert by external id (201 created / 200 updated / 300 ambiguous), sObject Collections upsert."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

from connectors.base import TransportError
from connectors.http import HttpClient

API = "/services/data/v60.0"


class QueryLocatorExpired(TransportError):
    def __init__(self, message: str):
        super().__init__(message, permanent=False, status=400)


class CrmClient:
    def __init__(self, base_url: str, *, batch_size: int = 2000):
        self.http = HttpClient(base_url)
        self.batch_size = batch_size

    def query(self, soql: str, *, all_rows: bool = False) -> Iterator[list[dict]]:
        """Pages of records of one query, following nextRecordsUrl until done."""
        headers = {"Sforce-Query-Options": f"batchSize={self.batch_size}"}
        path = f"{API}/{'queryAll' if all_rows else 'query'}"
        body = self._get(path, params={"q": soql}, headers=headers)
        while True:
            yield body.get("records", [])
            if body.get("done", True) or not body.get("nextRecordsUrl"):
                return
            body = self._get(body["nextRecordsUrl"], headers=headers)

    def _get(self, path: str, **kwargs) -> dict:
        try:
            return self.http.json("GET", path, **kwargs)
        except TransportError as exc:
            if exc.status == 400 and "INVALID_QUERY_LOCATOR" in str(exc):
                raise QueryLocatorExpired(str(exc)) from exc
            raise

    def upsert(self, obj: str, ext_field: str, ext_id: str, body: dict) -> tuple[str, bool]:
        """(record id, created). 300 Multiple Choices — the external id matches several records — is permanent."""
        path = f"{API}/sobjects/{obj}/{ext_field}/{quote(ext_id, safe='')}"
        resp = self.http.request("PATCH", path, json=body, ok=(200, 201, 204, 300))
        if resp.status_code == 300:
            raise TransportError(
                f"{obj} external id {ext_id} matches several records ({', '.join(resp.json())}): "
                "remove the duplicates in the CRM, then replay",
                permanent=True,
                status=300,
            )
        data = resp.json() if resp.content else {}
        return data.get("id", ""), resp.status_code == 201

    def composite_upsert(self, obj: str, ext_field: str, records: list[dict]) -> list[dict]:
        """Per-record results ({id, success, errors, created}) of an sObject Collections upsert."""
        body = {"allOrNone": False, "records": [{"attributes": {"type": obj}, **r} for r in records]}
        return self.http.json("PATCH", f"{API}/composite/sobjects/{obj}/{ext_field}", json=body)

    def close(self) -> None:
        self.http.close()
