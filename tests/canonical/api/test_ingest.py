"""POST /api/v1/ingest/{system}/{domain}/: per-record results, all-or-nothing envelope checks, idempotency."""

from __future__ import annotations

import json

import pytest

from canonical.models import ChangeEvent, Contract, CrossReference, Customer, IdempotencyKey, SourceRecord

pytestmark = pytest.mark.django_db

URL = "/api/v1/ingest/crm/customer/"


def _counts() -> tuple[int, ...]:
    return (
        SourceRecord.objects.count(),
        Customer.objects.count(),
        Customer.history.count(),
        CrossReference.objects.count(),
        ChangeEvent.objects.count(),
    )


@pytest.fixture
def crm(make_api):
    return make_api("ingest", "read:customer", system="crm", name="crm-sync")


def test_one_object_is_ingested_and_its_result_returned(crm):
    body = {"source_id": "001A", "updated_at": "2024-01-01T00:00:00Z", "attributes": {"name": "Acme", "country": "DE"}}

    response = crm.post(URL, body, format="json")

    assert response.status_code == 200
    data = response.json()
    assert (data["system"], data["domain"], data["count"], data["counts"]) == ("crm", "customer", 1, {"created": 1})
    result = data["results"][0]
    assert (result["source_id"], result["outcome"]) == ("001A", "created")
    record = Customer.objects.get(pk=result["golden_id"])
    assert record.name == "Acme"
    assert record.history.get().history_actor == "client:crm-sync"
    assert record.history.get().history_channel == "api"


def test_every_history_row_an_api_ingest_writes_says_who_through_what_and_why(crm):
    from canonical.models import DataException

    body = [
        {"source_id": "001A", "updated_at": "2024-01-01T00:00:00Z", "attributes": {"name": "Acme", "country": "DE"}},
        {"source_id": "001B", "updated_at": "2024-01-01T00:00:00Z", "attributes": {"name": "Bad", "country": "XX"}},
    ]

    assert crm.post(URL, body, format="json").status_code == 200

    rows = [
        *Customer.history.all(),
        *CrossReference.history.all(),
        *DataException.history.all(),
    ]
    assert {type(r).__name__ for r in rows} == {
        "HistoricalCustomer",
        "HistoricalCrossReference",
        "HistoricalDataException",
    }
    for row in rows:
        assert (row.history_actor, row.history_channel) == ("client:crm-sync", "api")
        assert row.history_change_reason == "ingest of 2 customer record(s) from crm over the API"


def test_a_list_gets_per_record_outcomes_and_counts(crm):
    crm.post(URL, {"source_id": "1", "updated_at": "2024-01-02T00:00:00Z", "attributes": {"name": "A"}}, format="json")
    batch = [
        {"source_id": "1", "updated_at": "2024-01-02T00:00:00Z", "attributes": {"name": "A"}},
        {"source_id": "1", "updated_at": "2024-01-01T00:00:00Z", "attributes": {"name": "Old A"}},
        {"source_id": "2", "updated_at": "2024-01-02T00:00:00Z", "attributes": {"name": "B", "country": "XX"}},
        {"source_id": "3", "updated_at": "2024-01-02T00:00:00Z", "attributes": {"name": "C"}},
    ]

    data = crm.post(URL, batch, format="json").json()

    assert [r["outcome"] for r in data["results"]] == ["unchanged", "stale", "exception", "created"]
    assert data["counts"] == {"unchanged": 1, "stale": 1, "exception": 1, "created": 1}
    assert data["results"][2]["errors"]["country"]


def test_malformed_objects_are_400_with_per_index_errors_and_nothing_written(crm):
    before = _counts()
    batch = [
        {"source_id": "ok", "updated_at": "2024-01-01T00:00:00Z", "attributes": {"name": "Fine"}},
        {"updated_at": "yesterday", "attributes": {"name": "No id"}},
        {"source_id": "x", "attributes": {"colour": "red"}},
        "not an object",
    ]

    response = crm.post(URL, batch, format="json")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"1", "2", "3"}
    assert set(errors["1"]) == {"source_id", "updated_at"}
    assert "colour" in errors["2"]["attributes"][0]
    assert "non_field_errors" in errors["3"]
    assert "nothing was written" in response.json()["detail"]
    assert _counts() == before


def test_an_ingest_key_cannot_ingest_as_another_system(crm):
    before = _counts()

    response = crm.post("/api/v1/ingest/erp/customer/", {"source_id": "1", "attributes": {"name": "A"}}, format="json")

    assert response.status_code == 403
    assert response.json()["detail"] == "This key ingests only as its own system (system 'crm'), not as 'erp'."
    assert _counts() == before


def test_a_key_without_the_ingest_scope_is_refused(make_api):
    response = make_api("read:customer", system="crm").post(URL, {"source_id": "1"}, format="json")

    assert response.status_code == 403
    assert "ingest" in response.json()["detail"]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/api/v1/ingest/sap/customer/", "Unknown system 'sap'"),
        ("/api/v1/ingest/crm/planet/", "Unknown domain 'planet'"),
    ],
)
def test_unknown_system_or_domain_is_404_with_a_message(crm, url, message):
    response = crm.post(url, {"source_id": "1", "attributes": {}}, format="json")

    assert response.status_code == 404
    assert response.json()["detail"].startswith(message)


def test_too_many_objects_is_400_saying_to_split(crm):
    batch = [{"source_id": str(i), "attributes": {"name": "x"}} for i in range(1001)]

    response = crm.post(URL, batch, format="json")

    assert response.status_code == 400
    assert "split the batch" in response.json()["detail"]
    assert SourceRecord.objects.count() == 0


@pytest.mark.parametrize("body", [b"[]", b"42", b'"text"', b"null"])
def test_a_body_that_is_not_objects_is_400(crm, body):
    response = crm.post(URL, body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["errors"]


def _post_contract_with_a_big_total(make_api):
    api = make_api("ingest", "read:contract", system="crm")
    customer = {"source_id": "C1", "updated_at": "2024-01-01T00:00:00Z", "attributes": {"name": "Acme"}}
    api.post("/api/v1/ingest/crm/customer/", customer, format="json")
    raw = (
        b'{"source_id": "K1", "updated_at": "2024-01-01T00:00:00Z", "attributes": {"contract_number": "K-1", '
        b'"customer": "C1", "currency": "EUR", "total_value": 1234567890123456.78}}'
    )
    response = api.post("/api/v1/ingest/crm/contract/", raw, content_type="application/json")
    assert response.json()["counts"] == {"created": 1}, response.json()
    return api


def test_money_sent_as_a_json_number_is_not_rounded_through_a_float(make_api):
    _post_contract_with_a_big_total(make_api)

    source = SourceRecord.objects.get(source_id="K1")

    assert source.attributes["total_value"] == "1234567890123456.78"  # a float would give ...456.75
    assert source.values["total_value"] == "1234567890123456.78"


@pytest.mark.postgres
def test_money_sent_as_a_json_number_reaches_the_golden_record_exactly(make_api):
    api = _post_contract_with_a_big_total(make_api)

    body = api.get(f"/api/v1/contracts/{Contract.objects.get().pk}/").json()

    assert body["total_value"] == "1234567890123456.78"


def test_same_idempotency_key_and_body_replays_the_stored_response_and_runs_nothing(crm):
    body = [{"source_id": "001A", "updated_at": "2024-01-01T00:00:00Z", "attributes": {"name": "Acme"}}]
    first = crm.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    after_first = _counts()

    second = crm.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")

    assert second.status_code == 200
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert _counts() == after_first
    assert IdempotencyKey.objects.get().client_name == "client:crm-sync"


def test_same_idempotency_key_with_another_body_is_422_and_nothing_written(crm):
    body = {"source_id": "001A", "updated_at": "2024-01-01T00:00:00Z", "attributes": {"name": "Acme"}}
    crm.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    before = _counts()

    response = crm.post(URL, {**body, "attributes": {"name": "Other"}}, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")

    assert response.status_code == 422
    assert "Idempotency-Key" in response.json()["errors"]
    assert _counts() == before
    assert Customer.objects.get().name == "Acme"


def test_idempotency_keys_are_per_client(make_api):
    body = {"source_id": "001A", "updated_at": "2024-01-01T00:00:00Z", "attributes": {"name": "Acme"}}
    one = make_api("ingest", system="crm").post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="k")
    other = make_api("ingest", system="crm").post(
        URL, {**body, "source_id": "001B"}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )

    assert one.status_code == other.status_code == 200
    assert "Idempotent-Replayed" not in other
    assert IdempotencyKey.objects.count() == 2


def test_a_too_long_idempotency_key_is_400(crm):
    response = crm.post(URL, {"source_id": "1", "attributes": {}}, format="json", HTTP_IDEMPOTENCY_KEY="k" * 300)

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["errors"]


def test_a_body_over_the_size_limit_is_413(crm, settings):
    settings.MDM_API_MAX_BODY_BYTES = 1000
    body = json.dumps([{"source_id": str(i), "attributes": {"name": "x" * 50}} for i in range(30)])

    response = crm.post(URL, body, content_type="application/json")

    assert response.status_code == 413
    assert "split" in response.json()["detail"]


def test_staff_users_may_ingest_as_any_system(admin_client):
    body = {"source_id": "E1", "updated_at": "2024-01-01T00:00:00Z", "attributes": {"name": "Acme"}}

    response = admin_client.post("/api/v1/ingest/erp/customer/", body, content_type="application/json")

    assert response.status_code == 200
    assert Customer.objects.get().history.get().history_actor == "admin"
