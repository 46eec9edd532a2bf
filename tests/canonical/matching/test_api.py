"""Matching over the API: candidates of a golden record, search before create, explain any two records."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from canonical.api.clients import api_client_create
from canonical.models import SourceRecord

from .conftest import golden_of, ingest, rec

pytestmark = pytest.mark.django_db


def api(*scopes: str) -> APIClient:
    _, key = api_client_create(
        name=f"m-{'-'.join(scopes) or 'none'}".replace(":", "_"), system=None, scopes=list(scopes)
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


@pytest.fixture
def two_acmes(fuzzy):
    """Two golden customers a steward should look at: same name and city, one has a web domain."""
    ingest(
        "crm",
        "customer",
        rec("001", name="Acme Analytics GmbH", website="acme-analytics.de", city="Berlin", country="DE"),
    )
    ingest("erp", "customer", rec("C-1", name="Acme Analytics", city="Berlin", country="DE"))
    ingest("crm", "customer", rec("002", name="Zenith Robotics Inc.", website="zenith.com", country="US"))
    a, b = golden_of("crm", "customer", "001"), golden_of("erp", "customer", "C-1")
    assert a != b
    return a, b


def test_candidates_of_a_golden_record_are_ranked_with_explanations(two_acmes):
    a, b = two_acmes
    response = api("read:customer").get(f"/api/v1/customers/{a}/candidates/")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["golden_id"] == str(a)
    assert [c["golden_id"] for c in body["candidates"]] == [str(b)]
    candidate = body["candidates"][0]
    assert candidate["band"] == "review"
    assert 0.5 <= candidate["score"] < 0.99
    assert candidate["reason"].startswith("possibly the same customer") or candidate["reason"].startswith(
        "likely the same customer"
    )
    name = next(c for c in candidate["comparisons"] if c["field"] == "name")
    assert name == {
        "field": "name",
        "value_a": "acme analytics",
        "value_b": "acme analytics",
        "level": "exact",
        "weight": name["weight"],
    }
    assert name["weight"] > 5


def test_candidates_of_an_unknown_record_is_a_json_404(fuzzy):
    client = api("read:customer")
    assert client.get("/api/v1/customers/00000000-0000-0000-0000-000000000000/candidates/").status_code == 404
    response = client.get("/api/v1/customers/not-a-uuid/candidates/")
    assert response.status_code == 400
    assert response.json()["errors"] == {"id": ["'not-a-uuid' is not a UUID"]}


def test_search_before_create_returns_what_the_hub_would_do_and_why(two_acmes):
    a, _ = two_acmes
    response = api("read:customer").get(
        "/api/v1/customers/match/",
        {"name": "ACME Analytics G.m.b.H.", "website": "https://www.acme-analytics.de/kontakt"},
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["decision"] == "link"
    assert body["golden_id"] == str(a)
    assert body["candidates"][0]["golden_id"] == str(a)
    assert body["candidates"][0]["band"] == "link"
    assert "same web domain" in body["reason"]


def test_search_for_a_record_nobody_has_is_new_with_no_candidates(two_acmes):
    body = api("read:customer").get("/api/v1/customers/match/", {"name": "Quanta Textiles", "country": "FR"}).json()
    assert body == {
        "decision": "new",
        "golden_id": None,
        "reason": "no golden record shares a blocking key",
        "candidates": [],
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "non_field_errors"),
        ({"nmae": "Acme"}, "nmae"),
        ({"name": "Acme", "country": "Germany"}, "country"),
        ({"name": "A", "limit": "0"}, "limit"),
    ],
)
def test_search_with_bad_input_is_a_400_naming_the_field(fuzzy, params, field):
    response = api("read:customer").get("/api/v1/customers/match/", params)
    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_search_does_not_leave_anything_behind(two_acmes):
    from canonical.models import Customer, SourceRecord

    before = (Customer.objects.count(), SourceRecord.objects.count())
    api("read:customer").get("/api/v1/customers/match/", {"name": "Brand New Company"})
    assert (Customer.objects.count(), SourceRecord.objects.count()) == before


def test_explain_two_golden_records(two_acmes):
    a, b = two_acmes
    response = api("read:customer").post(
        "/api/v1/customers/explain/", {"a": {"golden_id": str(a)}, "b": {"golden_id": str(b)}}, format="json"
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["a"] == {"golden_id": str(a)} and body["b"] == {"golden_id": str(b)}
    assert body["band"] == "review"
    fields = {c["field"]: c for c in body["comparisons"]}
    assert fields["web domain"]["level"] == "missing"
    assert fields["address"]["level"] == "same city"


def test_explain_a_golden_record_against_attributes(two_acmes):
    a, _ = two_acmes
    body = (
        api("read:customer")
        .post(
            "/api/v1/customers/explain/",
            {"a": {"golden_id": str(a)}, "b": {"name": "Acme Analytics", "website": "acme-analytics.de"}},
            format="json",
        )
        .json()
    )
    assert body["band"] == "link"
    assert body["b"] is None


def test_explain_applies_the_hard_rules(fuzzy):
    body = (
        api("read:legal_entity")
        .post(
            "/api/v1/legal-entities/explain/",
            {
                "a": {"name": "Acme GmbH", "country": "DE", "tax_id": "DE136695976"},
                "b": {"name": "Acme GmbH", "country": "DE", "tax_id": "DE129273398"},
            },
            format="json",
        )
        .json()
    )
    assert body["score"] == 0.0
    assert body["band"] == "no match"
    assert body["reason"].startswith("never the same: different valid tax ids")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"a": {"name": "x"}}, "b"),
        ([1, 2], "a"),
        ({"a": {"golden_id": "nope"}, "b": {"name": "x"}}, "a.golden_id"),
        ({"a": {"name": "x"}, "b": {"tax_id": "DE1", "country": "DE"}}, "b.tax_id"),
        ({"a": {"name": "x"}, "b": {"colour": "red"}}, "b.colour"),
        ({"a": {"name": "x"}, "b": "Acme"}, "b"),
        ({"a": {"name": "x"}, "b": {"name": "y"}, "c": {}}, "c"),
    ],
)
def test_explain_with_bad_input_is_a_400_naming_the_field(fuzzy, payload, field):
    response = api("read:legal_entity").post("/api/v1/legal-entities/explain/", payload, format="json")
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]


def test_explain_of_an_unknown_golden_record_is_a_404(fuzzy):
    response = api("read:customer").post(
        "/api/v1/customers/explain/",
        {"a": {"golden_id": "00000000-0000-0000-0000-000000000001"}, "b": {"name": "x"}},
        format="json",
    )
    assert response.status_code == 404


def test_matching_endpoints_need_the_read_scope_of_the_domain(two_acmes):
    a, _ = two_acmes
    other = api("read:resource")
    assert other.get(f"/api/v1/customers/{a}/candidates/").status_code == 403
    assert other.get("/api/v1/customers/match/", {"name": "Acme"}).status_code == 403
    assert (
        other.post("/api/v1/customers/explain/", {"a": {"name": "a"}, "b": {"name": "b"}}, format="json").status_code
        == 403
    )
    assert APIClient().get("/api/v1/customers/match/", {"name": "Acme"}).status_code in (401, 403)


def test_personal_values_are_shown_only_with_read_personal(fuzzy):
    payload = {
        "a": {"first_name": "Anna", "last_name": "Weber", "date_of_birth": "1980-01-02"},
        "b": {"first_name": "Anna", "last_name": "Weber", "date_of_birth": "1980-01-02"},
    }
    plain = api("read:resource").post("/api/v1/resources/explain/", payload, format="json").json()
    dob = next(c for c in plain["comparisons"] if c["field"] == "date of birth")
    assert (dob["value_a"], dob["value_b"], dob["level"]) == (None, None, "exact")
    allowed = api("read:resource", "read:personal").post("/api/v1/resources/explain/", payload, format="json").json()
    dob = next(c for c in allowed["comparisons"] if c["field"] == "date of birth")
    assert (dob["value_a"], dob["value_b"]) == ("1980-01-02", "1980-01-02")


def test_candidates_search_once_per_distinct_source_values_and_at_most_fifty_times(two_acmes, monkeypatch):
    """A golden record with many sources: sources that say the same thing are searched once, and at most 50
    searches run (the most recently updated sources first), with the same answer for what they find."""
    from canonical.api import matching as matching_api

    a, b = two_acmes
    reader = api("read:customer")
    before = reader.get(f"/api/v1/customers/{a}/candidates/").json()
    # 60 more CRM sources of golden record a saying what 001 says, 55 of them with their own phone number
    for i in range(60):
        extra = {"phone": f"+49 30 1234{i:03d}"} if i < 55 else {}
        ingest("crm", "customer", rec(f"X{i}", name="Acme Analytics GmbH", website="acme-analytics.de",
                                      city="Berlin", country="DE", **extra))  # fmt: skip
    assert SourceRecord.objects.filter(golden_id=a).count() == 61
    searched = []
    real = matching_api._search
    monkeypatch.setattr(matching_api, "_search", lambda *args, **kw: searched.append(args[1]) or real(*args, **kw))

    body = reader.get(f"/api/v1/customers/{a}/candidates/").json()

    assert len(searched) == 50  # of 56 distinct sets of values (55 phones; 001's, which the five others repeat)
    assert len({json.dumps(v, sort_keys=True) for v in searched}) == 50
    assert [c["golden_id"] for c in body["candidates"]] == [c["golden_id"] for c in before["candidates"]] == [str(b)]
