"""A client for the Kantata (Mavenlink) API subset the hub uses: paged workspace lists with
`updated_after` and archived records, and workspace upsert keyed by the hub's external id."""

from __future__ import annotations

from connectors.http import HttpClient

API = "/api/v1"


class PsaClient:
    def __init__(self, base_url: str, *, per_page: int = 200):
        self.http = HttpClient(base_url)
        self.per_page = per_page

    def workspaces_page(self, *, updated_after: str | None, page: int) -> tuple[list[dict], int]:
        """One page of workspaces (archived included), oldest change first, and how many pages the query has."""
        params = {"page": page, "per_page": self.per_page, "include_archived": "true", "order": "updated_at:asc"}
        if updated_after:
            params["updated_after"] = updated_after
        body = self.http.json("GET", f"{API}/workspaces.json", params=params)
        objects = body.get("workspaces", {})
        rows = [objects[r["id"]] for r in body.get("results", []) if r.get("key") == "workspaces"]
        return rows, int(body.get("meta", {}).get("page_count", 1) or 1)

    def workspace_upsert(self, body: dict) -> dict:
        answer = self.http.json("POST", f"{API}/workspaces.json", json={"workspace": body}, ok=(200, 201))
        ws_id = answer["results"][0]["id"]
        return answer["workspaces"][ws_id]

    def close(self) -> None:
        self.http.close()
