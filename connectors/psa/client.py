"""A client for the Kantata (Mavenlink) API subset the hub uses: paged workspace lists with
`updated_after` and archived records, and workspace upsert keyed by the hub's external id."""

from __future__ import annotations

from collections.abc import Iterator

from connectors.http import HttpClient

API = "/api/v1"


class PsaClient:
    def __init__(self, base_url: str, *, per_page: int = 200):
        self.http = HttpClient(base_url)
        self.per_page = per_page

    def workspaces(self, *, updated_after: str | None) -> Iterator[list[dict]]:
        """Pages of workspaces (archived included), oldest change first, in the order of `results`."""
        page = 1
        while True:
            params = {"page": page, "per_page": self.per_page, "include_archived": "true", "order": "updated_at:asc"}
            if updated_after:
                params["updated_after"] = updated_after
            body = self.http.json("GET", f"{API}/workspaces.json", params=params)
            objects = body.get("workspaces", {})
            yield [objects[r["id"]] for r in body.get("results", []) if r.get("key") == "workspaces"]
            if page >= body.get("meta", {}).get("page_count", 1):
                return
            page += 1

    def workspace_upsert(self, body: dict) -> dict:
        answer = self.http.json("POST", f"{API}/workspaces.json", json={"workspace": body}, ok=(200, 201))
        ws_id = answer["results"][0]["id"]
        return answer["workspaces"][ws_id]

    def close(self) -> None:
        self.http.close()
