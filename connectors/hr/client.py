"""A client for a Workday custom report (RaaS) of workers with an `Updated_Since` prompt, as JSON."""

from __future__ import annotations

from connectors.http import HttpClient


class HrClient:
    def __init__(self, base_url: str, *, tenant: str = "acme", report: str = "Workers"):
        self.http = HttpClient(base_url)
        self.path = f"/ccx/service/customreport2/{tenant}/{report}"

    def workers(self, *, updated_since: str | None) -> list[dict]:
        params = {"format": "json"}
        if updated_since:
            params["Updated_Since"] = updated_since
        return self.http.json("GET", self.path, params=params).get("Report_Entry", [])

    def close(self) -> None:
        self.http.close()
