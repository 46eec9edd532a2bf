"""Reconciliation runs over the API (read scope) and in the admin, and the operations dashboard (staff only)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from canonical.api.clients import api_client_create
from connectors.models import ReconciliationItem, ReconciliationRun
from connectors.reconciliation.services import reconciliation_run

from .conftest import ingest, rec


def api(*scopes: str, name: str, system: str | None = None) -> APIClient:
    _, key = api_client_create(name=name, scopes=list(scopes), system=system)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def run(sandbox, connect, settings) -> ReconciliationRun:
    """A run of the CRM with one raised difference (a record the CRM does not have) and one healed one."""
    settings.MDM_RELAY_KICK = False
    connect(sandbox, "crm")
    sandbox.put("crm", "Account", {"Name": "Acme", "Website": "https://acme.example"}, modified="2026-01-01T00:00:00Z")
    ingest("crm", "customer", rec("001GHOST", 0, name="Ghost", website="https://ghost.example"))
    return reconciliation_run(system="crm", trigger="test")


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("ops", password="pw", is_staff=True)


def test_runs_are_listed_newest_first_with_their_counts(run):
    client = api("read:customer", name="reader")
    body = client.get("/api/v1/reconciliation-runs/").json()
    assert body["count"] == 1
    (row,) = body["results"]
    assert (row["id"], row["system"], row["status"]) == (run.pk, "crm", "succeeded")
    assert row["counts"] == {"missing_in_hub": 1, "missing_in_system": 1} and row["differences"] == 2
    assert row["actions"] == {"healed": 1, "raised": 1} and row["request_id"] == run.request_id
    detail = client.get(f"/api/v1/reconciliation-runs/{run.pk}/").json()
    assert detail["records"] == 1 and detail["domains"] == ["customer", "contract", "project"]


def test_items_list_each_difference_and_filter_by_kind(run):
    client = api("read:customer", name="reader")
    items = client.get(f"/api/v1/reconciliation-runs/{run.pk}/items/").json()["results"]
    assert sorted((i["kind"], i["action"]) for i in items) == [("missing_in_hub", "healed"),
                                                                ("missing_in_system", "raised")]  # fmt: skip
    raised = client.get(f"/api/v1/reconciliation-runs/{run.pk}/items/?kind=missing_in_system").json()["results"]
    assert [i["source_id"] for i in raised] == ["001GHOST"] and raised[0]["exception"]


def test_items_show_only_readable_domains_and_personal_values_only_with_the_personal_scope(run):
    ReconciliationItem.objects.create(run=run, domain="resource", kind="field_drift", action="healed",
                                      source_id="W1", fields={"date_of_birth": {"hub": "1990-01-01",
                                                                                "system": "1991-01-01"}})  # fmt: skip
    customer_only = api("read:customer", name="customers")
    items = customer_only.get(f"/api/v1/reconciliation-runs/{run.pk}/items/").json()["results"]
    assert {i["domain"] for i in items} == {"customer"}
    people = api("read:resource", name="people").get(f"/api/v1/reconciliation-runs/{run.pk}/items/").json()["results"]
    assert people[0]["fields"]["date_of_birth"] == {"hub": "(personal)", "system": "(personal)"}
    hr = api("read:resource", "read:personal", name="hr").get(f"/api/v1/reconciliation-runs/{run.pk}/items/")
    assert hr.json()["results"][0]["fields"]["date_of_birth"]["system"] == "1991-01-01"


def test_bad_requests_get_clear_4xx(run):
    client = api("read:customer", name="reader")
    assert APIClient().get("/api/v1/reconciliation-runs/").status_code in (401, 403)
    assert api("ingest", name="writer", system="crm").get("/api/v1/reconciliation-runs/").status_code == 403
    bad = client.get("/api/v1/reconciliation-runs/?status=bogus")
    assert bad.status_code == 400 and "status" in bad.json()["errors"]
    assert client.get(f"/api/v1/reconciliation-runs/{run.pk}/items/?kind=bogus").status_code == 400
    assert client.get("/api/v1/reconciliation-runs/999999/").status_code == 404
    assert client.get("/api/v1/reconciliation-runs/abc/").status_code == 404


def test_runs_and_items_are_readable_in_the_admin(run, client, staff):
    superuser = get_user_model().objects.create_superuser("root", password="pw")
    client.force_login(superuser)
    page = client.get(f"/admin/connectors/reconciliationrun/{run.pk}/change/")
    assert page.status_code == 200 and b"missing in system 1" not in page.content
    assert b"2 difference(s)" in page.content
    listing = client.get(f"/admin/connectors/reconciliationitem/?run__id__exact={run.pk}")
    assert listing.status_code == 200 and b"001GHOST" in listing.content
    assert client.get("/admin/connectors/reconciliationrun/add/").status_code == 403


def test_the_operations_dashboard_is_for_staff_and_draws_charts(run, client, staff):
    anonymous = client.get("/admin/connectors/operationsdashboard/")
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    client.force_login(get_user_model().objects.create_user("visitor", password="pw"))
    assert client.get("/admin/connectors/operationsdashboard/").status_code == 302
    client.force_login(staff)
    page = client.get("/admin/connectors/operationsdashboard/")
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('class="ops-chart"') == 5
    for heading in ("Sync status per system", "Reconciliation drift over time", "Exception backlog",
                    "Lead-to-project cycle time"):  # fmt: skip
        assert heading in html
    assert 'id="ops-sync"' in html and "<td>crm</td>" in html
    assert "Reconciliation difference" in html  # the exception queue of kind reconciliation, with its count
