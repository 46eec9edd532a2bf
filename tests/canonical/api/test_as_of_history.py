"""`?as_of=` reads a golden record as it was; `/history/` lists its history rows with who, how, why, what."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from canonical.models import Customer

from .conftest import ingest, rec

pytestmark = pytest.mark.django_db


def _history_date(record, version: int) -> dt.datetime:
    return record.history.filter(version=version).order_by("history_date").first().history_date


def test_as_of_returns_the_past_state_after_an_update(reader):
    golden_id = ingest("crm", "customer", rec("001A", 1, name="Acme", industry="Tech"))[0].golden_id
    ingest("crm", "customer", rec("001A", 2, name="Acme Corporation", industry="Retail"))
    record = Customer.objects.get(pk=golden_id)
    between = _history_date(record, 2) - dt.timedelta(microseconds=1)

    past = reader.get(f"/api/v1/customers/{golden_id}/", {"as_of": between.isoformat()})
    now = reader.get(f"/api/v1/customers/{golden_id}/")

    assert past.status_code == 200
    assert (past.json()["name"], past.json()["industry"], past.json()["version"]) == ("Acme", "Tech", 1)
    assert past.json()["xrefs"] == [{"system": "crm", "source_id": "001A"}]
    assert (now.json()["name"], now.json()["version"]) == ("Acme Corporation", 2)


def test_as_of_before_the_record_existed_is_404(reader):
    golden_id = ingest("crm", "customer", rec("001A", 1, name="Acme"))[0].golden_id

    response = reader.get(f"/api/v1/customers/{golden_id}/", {"as_of": "2000-01-01T00:00:00Z"})

    assert response.status_code == 404
    assert "did not exist yet" in response.json()["detail"]


def test_as_of_with_a_space_for_the_plus_of_an_offset_is_understood(reader):
    golden_id = ingest("crm", "customer", rec("001A", 1, name="Acme"))[0].golden_id
    later = (timezone.now() + dt.timedelta(hours=1)).astimezone(dt.timezone(dt.timedelta(hours=2)))

    response = reader.get(f"/api/v1/customers/{golden_id}/?as_of={later.isoformat().replace('+', ' ')}")

    assert response.status_code == 200
    assert response.json()["name"] == "Acme"


@pytest.mark.parametrize("bad", ["yesterday", "2024-13-01T00:00:00Z", "", "2024-02-30"])
def test_malformed_as_of_is_400_with_a_field_message(reader, bad):
    golden_id = ingest("crm", "customer", rec("001A", 1, name="Acme"))[0].golden_id

    response = reader.get(f"/api/v1/customers/{golden_id}/", {"as_of": bad})

    assert response.status_code == 400
    assert "ISO 8601" in response.json()["errors"]["as_of"][0]


def test_history_lists_each_row_with_actor_channel_request_and_changed_fields(make_api):
    ingester = make_api("ingest", system="crm", name="crm-sync")
    body = {
        "source_id": "001A",
        "updated_at": "2024-01-01T00:00:00Z",
        "attributes": {"name": "Acme", "industry": "Tech"},
    }
    first = ingester.post("/api/v1/ingest/crm/customer/", body, format="json", HTTP_X_REQUEST_ID="req-one")
    body = {**body, "updated_at": "2024-01-02T00:00:00Z", "attributes": {"name": "Acme", "industry": "Retail"}}
    ingester.post("/api/v1/ingest/crm/customer/", body, format="json", HTTP_X_REQUEST_ID="req-two")
    golden_id = first.json()["results"][0]["golden_id"]

    history = make_api("read:customer").get(f"/api/v1/customers/{golden_id}/history/").json()

    assert history["count"] == 2
    newest, oldest = history["results"]
    assert (oldest["type"], oldest["version"], oldest["request_id"]) == ("+", 1, "req-one")
    assert oldest["changes"]["name"] == {"old": None, "new": "Acme"}
    assert (newest["type"], newest["version"], newest["request_id"]) == ("~", 2, "req-two")
    assert newest["changes"] == {"industry": {"old": "Tech", "new": "Retail"}}
    for entry in (newest, oldest):
        assert (entry["actor"], entry["channel"]) == ("client:crm-sync", "api")
    assert newest["reason"] == "ingest of 1 customer record(s) from crm over the API"


def test_history_of_an_unknown_record_is_404(reader):
    response = reader.get("/api/v1/customers/00000000-0000-0000-0000-000000000001/history/")

    assert response.status_code == 404
