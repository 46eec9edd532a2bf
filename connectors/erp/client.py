"""A client for the NetSuite REST subset the hub uses: SuiteQL queries (paged by the caller's keyset), and record
upsert by external id (PUT …/record/v1/{type}/eid:{externalId}, 204 with the record in Location)."""

from __future__ import annotations

from urllib.parse import quote

from connectors.base import TransportError
from connectors.http import HttpClient

REST = "/services/rest"


class ErpClient:
    def __init__(self, base_url: str, *, page_size: int = 1000):
        self.http = HttpClient(base_url, headers={"Prefer": "transient"})
        self.page_size = page_size

    def suiteql_page(self, q: str) -> tuple[list[dict], bool]:
        """The first page of a query's rows (the query pages itself by keyset), and whether more follow."""
        body = self.http.json(
            "POST", f"{REST}/query/v1/suiteql", params={"limit": self.page_size, "offset": 0}, json={"q": q}
        )
        return body.get("items", []), bool(body.get("hasMore"))

    def upsert(self, record_type: str, external_id: str, body: dict) -> str:
        """The record's internal id."""
        path = f"{REST}/record/v1/{record_type}/eid:{quote(external_id, safe='')}"
        resp = self.http.request("PUT", path, json=body, ok=(200, 204))
        location = resp.headers.get("Location", "")
        if not location:
            raise TransportError(f"upsert of {record_type} {external_id} returned no Location", permanent=False)
        return location.rstrip("/").rsplit("/", 1)[-1]

    def update(self, record_type: str, internal_id: str, external_id: str, body: dict) -> str:
        """Update a record by its internal id and give it the hub's external id (so later upserts find it)."""
        path = f"{REST}/record/v1/{record_type}/{quote(internal_id, safe='')}"
        self.http.request("PATCH", path, json={**body, "externalId": external_id}, ok=(200, 204))
        return internal_id

    def close(self) -> None:
        self.http.close()
