"""Golden-record list and retrieve: representation, filters, search, ordering, pagination, ETag, merges."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from rest_framework.test import APIRequestFactory

from canonical.api.pagination import GoldenCursorPagination
from canonical.audit import Channel, audit_context
from canonical.models import Customer, GoldenStatus, Resource

from .conftest import ingest, rec

pytestmark = pytest.mark.django_db


def test_retrieve_has_meta_fields_canonical_fields_xrefs_and_provenance(reader, acme):
    response = reader.get(f"/api/v1/customers/{acme.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(acme.pk)
    assert body["status"] == "active"
    assert body["version"] >= 1
    assert {"created_at", "updated_at", "merged_into", "references"} <= set(body)
    assert body["name"] == "Acme Corp"  # crm owns the name
    assert body["city"] == "Berlin"  # erp owns the billing address
    assert body["country"] == "DE"
    assert body["xrefs"] == [{"system": "crm", "source_id": "001A"}, {"system": "erp", "source_id": "C-100"}]
    assert body["provenance"]["name"]["system"] == "crm"
    assert body["provenance"]["city"]["system"] == "erp"
    assert body["merged_into"] is None


def test_references_are_golden_ids_with_a_display(reader, acme):
    ingest("erp", "legal_entity", rec("LE-1", 1, name="Acme GmbH", country="DE"))
    ingest("erp", "customer", rec("C-100", 3, name="ACME Corporation GmbH", website="acme.com", legal_entity="LE-1"))
    acme.refresh_from_db()

    body = reader.get(f"/api/v1/customers/{acme.pk}/").json()

    assert body["legal_entity"] == str(acme.legal_entity_id)
    assert body["references"]["legal_entity"] == {"id": str(acme.legal_entity_id), "display": "Acme GmbH (DE)"}
    assert body["references"]["parent"] is None


def test_decimals_and_dates_are_exact_strings(reader):
    ingest("erp", "rate_card", rec("RC1", 1, code="STD", currency="EUR", lines=[{"role": "Dev", "rate": "1234.10"}]))
    results = ingest("hr", "resource", rec("E1", 1, first_name="Ada", last_name="L", cost_rate="95.50"))

    card = reader.get("/api/v1/rate-cards/").json()["results"][0]
    person = reader.get(f"/api/v1/resources/{results[0].golden_id}/").json()

    assert card["lines"] == [{"role": "Dev", "grade": None, "unit": "hour", "rate": "1234.10"}]
    assert person["cost_rate"] == "95.50"


def test_personal_fields_are_hidden_without_the_scope(make_api):
    results = ingest(
        "hr",
        "resource",
        rec("E1", 1, first_name="Ada", last_name="Lovelace", national_id="X123", date_of_birth="1990-12-10"),
    )
    url = f"/api/v1/resources/{results[0].golden_id}/"

    plain = make_api("read:resource").get(url).json()
    listed = make_api("read:resource").get("/api/v1/resources/").json()["results"][0]

    for body in (plain, listed):
        assert body["first_name"] == "Ada"
        for name in ("date_of_birth", "national_id", "address_line1", "address_line2", "postal_code", "region"):
            assert name not in body
            assert name not in body["provenance"]


def test_personal_fields_are_shown_with_the_scope(make_api):
    results = ingest("hr", "resource", rec("E1", 1, first_name="Ada", last_name="Lovelace", national_id="X123"))

    body = make_api("read:resource", "read:personal").get(f"/api/v1/resources/{results[0].golden_id}/").json()

    assert body["national_id"] == "X123"
    assert body["date_of_birth"] is None
    assert body["provenance"]["national_id"]["system"] == "hr"


def test_personal_fields_leave_the_etag_different(make_api):
    results = ingest("hr", "resource", rec("E1", 1, first_name="Ada", last_name="Lovelace", national_id="X123"))
    url = f"/api/v1/resources/{results[0].golden_id}/"

    plain = make_api("read:resource").get(url)
    personal = make_api("read:resource", "read:personal").get(url)

    assert plain["ETag"] != personal["ETag"]


def test_unknown_id_is_404_with_a_message(reader):
    response = reader.get("/api/v1/customers/00000000-0000-0000-0000-000000000000/")

    assert response.status_code == 404
    assert "No customer with id" in response.json()["detail"]


def test_list_filters_by_country_identifier_status_and_updated_after(reader):
    ingest("erp", "legal_entity", rec("LE-1", 1, name="Acme GmbH", country="DE", tax_id="DE136695976"))
    ingest("erp", "legal_entity", rec("LE-2", 1, name="Globex SARL", country="FR"))
    ingest("erp", "legal_entity", rec("LE-3", 1, name="Initech BV", country="NL", registration_number="123"))

    def names(query: str) -> list[str]:
        response = reader.get(f"/api/v1/legal-entities/?{query}")
        assert response.status_code == 200, response.json()
        return sorted(r["name"] for r in response.json()["results"])

    assert names("country=de") == ["Acme GmbH"]
    assert names("tax_id=DE136695976") == ["Acme GmbH"]
    assert names("tax_id=136 695 976") == ["Acme GmbH"]
    assert names("registration_number=123") == ["Initech BV"]
    assert names("status=inactive") == []
    assert names("system=erp") == ["Acme GmbH", "Globex SARL", "Initech BV"]
    assert names("system=crm") == []
    assert names("updated_after=2999-01-01T00:00:00Z") == []
    assert len(names("updated_after=2000-01-01T00:00:00Z")) == 3


def test_list_filter_with_a_bad_value_is_400_with_the_field(reader):
    response = reader.get("/api/v1/contracts/?customer=not-a-uuid&updated_after=yesterday")

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"customer", "updated_after"}


def test_search_on_title_fields_and_ordering(reader):
    for i, name in enumerate(["Zeta Ltd", "Alpha Inc", "Alpine Corp"]):
        ingest("crm", "customer", rec(f"00{i}", 1, name=name))

    searched = reader.get("/api/v1/customers/?search=alp&ordering=name").json()["results"]
    descending = reader.get("/api/v1/customers/?ordering=-name").json()["results"]

    assert [r["name"] for r in searched] == ["Alpha Inc", "Alpine Corp"]
    assert [r["name"] for r in descending] == ["Zeta Ltd", "Alpine Corp", "Alpha Inc"]


def test_cursor_pagination_walks_every_record_once(reader):
    for i in range(7):
        ingest("crm", "customer", rec(f"C{i}", 1, name=f"Customer {i}"))

    seen, url = [], "/api/v1/customers/?page_size=3"
    while url:
        body = reader.get(url).json()
        seen += [r["name"] for r in body["results"]]
        url = body["next"]

    assert sorted(seen) == sorted(f"Customer {i}" for i in range(7))


def test_paginator_refuses_an_unordered_queryset():
    request = APIRequestFactory().get("/api/v1/customers/")
    from rest_framework.request import Request

    with pytest.raises(ImproperlyConfigured, match="ordered queryset"):
        GoldenCursorPagination().paginate_queryset(Customer.objects.order_by(), Request(request))


def test_list_runs_a_fixed_number_of_queries_whatever_the_page_size(reader, django_assert_max_num_queries):
    for i in range(12):
        ingest("erp", "legal_entity", rec(f"LE-{i}", 1, name=f"Entity {i}", country="DE"))
        ingest("crm", "customer", rec(f"C{i}", 1, name=f"Customer {i}"))
        ingest("erp", "customer", rec(f"E{i}", 1, name=f"Billing {i}", legal_entity=f"LE-{i}"))
    reader.get("/api/v1/customers/")  # warm-up: auth's last_used_at write

    with django_assert_max_num_queries(4):  # client lookup, page, xrefs (one query for the page)
        response = reader.get("/api/v1/customers/?page_size=50")

    assert response.status_code == 200
    assert len(response.json()["results"]) == 24
    assert sum(1 for r in response.json()["results"] if r["references"]["legal_entity"]) == 12


def test_retrieve_runs_one_query(reader, acme, django_assert_num_queries):
    reader.get(f"/api/v1/customers/{acme.pk}/")  # warm-up: the client is read (and remembered), last_used_at

    # the record with its references and its xrefs (on SQLite the xrefs are a second query); the client is remembered
    with django_assert_num_queries(1 if connection.vendor == "postgresql" else 2):
        response = reader.get(f"/api/v1/customers/{acme.pk}/")

    assert response.status_code == 200
    assert response.json()["xrefs"] == [{"system": "crm", "source_id": "001A"}, {"system": "erp", "source_id": "C-100"}]


def test_etag_and_if_none_match_answer_304(reader, acme):
    url = f"/api/v1/customers/{acme.pk}/"
    first = reader.get(url)

    again = reader.get(url, HTTP_IF_NONE_MATCH=first["ETag"])
    ingest(
        "crm", "customer", rec("001A", 5, name="Acme Corporation", website="acme.com", country="DE", industry="Tech")
    )
    changed = reader.get(url, HTTP_IF_NONE_MATCH=first["ETag"])

    assert again.status_code == 304
    assert again["ETag"] == first["ETag"]
    assert changed.status_code == 200
    assert changed["ETag"] != first["ETag"]
    assert f"v{changed.json()['version']}-" in changed["ETag"]


def _merge(retired, survivor) -> None:
    with audit_context(actor="steward:test", channel=Channel.STEWARD, reason="same company"):
        retired.merged_into = survivor
        retired.status = GoldenStatus.MERGED
        retired.version += 1
        retired.save()


def test_retrieve_of_a_merged_record_answers_with_the_survivor(reader, acme):
    other = Customer.objects.get(pk=ingest("crm", "customer", rec("001B", 1, name="Acme dup"))[0].golden_id)
    _merge(other, acme)

    response = reader.get(f"/api/v1/customers/{other.pk}/")

    assert response.status_code == 200
    assert response.json()["id"] == str(acme.pk)
    assert response["Content-Location"] == f"/api/v1/customers/{acme.pk}/"


def test_list_leaves_merged_records_out_unless_asked(reader, acme):
    other = Customer.objects.get(pk=ingest("crm", "customer", rec("001B", 1, name="Acme dup"))[0].golden_id)
    _merge(other, acme)

    default = reader.get("/api/v1/customers/").json()["results"]
    merged = reader.get("/api/v1/customers/?status=merged").json()["results"]

    assert [r["id"] for r in default] == [str(acme.pk)]
    assert [(r["id"], r["merged_into"]) for r in merged] == [(str(other.pk), str(acme.pk))]


@pytest.mark.parametrize(
    "url_name", ["customers", "legal-entities", "contracts", "projects", "resources", "rate-cards"]
)
def test_every_domain_lists(make_api, url_name):
    from canonical.domains import DOMAINS

    domain = next(d for d, s in DOMAINS.items() if s.url_name == url_name)
    response = make_api(f"read:{domain}").get(f"/api/v1/{url_name}/")

    assert response.status_code == 200
    assert response.json()["results"] == []


def test_resource_list_hides_personal_fields_from_the_history_too(make_api):
    results = ingest("hr", "resource", rec("E1", 1, first_name="Ada", last_name="L", national_id="X123"))
    ingest("hr", "resource", rec("E1", 2, first_name="Ada", last_name="L", national_id="Y999"))
    url = f"/api/v1/resources/{results[0].golden_id}/history/"

    plain = make_api("read:resource").get(url).json()
    personal = make_api("read:resource", "read:personal").get(url).json()

    assert all("national_id" not in e["changes"] for e in plain["results"])
    assert personal["results"][0]["changes"]["national_id"] == {"old": "X123", "new": "Y999"}
    assert Resource.objects.count() == 1
