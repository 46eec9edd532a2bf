"""Cross-reference resolution: a system's id → its golden record, leading to the survivor after a merge."""

from __future__ import annotations

import pytest

from canonical.audit import Channel, audit_context
from canonical.models import Customer, GoldenStatus

from .conftest import ingest, rec

pytestmark = pytest.mark.django_db


def test_resolve_returns_the_golden_record_with_domain_and_id(reader, acme):
    response = reader.get("/api/v1/xrefs/resolve/", {"system": "erp", "domain": "customer", "source_id": "C-100"})

    assert response.status_code == 200
    body = response.json()
    assert (body["domain"], body["id"], body["merged"]) == ("customer", str(acme.pk), False)
    assert body["record"]["name"] == "Acme Corp"
    assert body["url"].endswith(f"/api/v1/customers/{acme.pk}/")


def test_resolve_of_a_merged_record_leads_to_the_survivor(reader, acme):
    dup = Customer.objects.get(pk=ingest("psa", "customer", rec("P-7", 1, name="Acme (delivery)"))[0].golden_id)
    with audit_context(actor="steward:test", channel=Channel.STEWARD, reason="same company"):
        dup.merged_into = acme
        dup.status = GoldenStatus.MERGED
        dup.save()

    body = reader.get("/api/v1/xrefs/resolve/", {"system": "psa", "domain": "customer", "source_id": "P-7"}).json()

    assert body["id"] == str(acme.pk)
    assert body["merged"] is True
    assert body["xref"] == {"system": "psa", "source_id": "P-7", "golden_id": str(dup.pk)}
    assert dup.history.first().history_actor == "steward:test"


def test_resolve_of_an_unknown_source_id_is_404_with_a_clear_message(reader):
    response = reader.get("/api/v1/xrefs/resolve/", {"system": "crm", "domain": "customer", "source_id": "nope"})

    assert response.status_code == 404
    assert response.json()["detail"] == "The hub knows no customer with source_id 'nope' in system 'crm'."


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({}, {"system", "domain", "source_id"}),
        ({"system": "crm", "domain": "planet", "source_id": "1"}, {"domain"}),
        ({"system": "sap", "domain": "customer", "source_id": "1"}, {"system"}),
    ],
)
def test_resolve_with_missing_or_unknown_params_is_400(reader, params, fields):
    response = reader.get("/api/v1/xrefs/resolve/", params)

    assert response.status_code == 400
    assert set(response.json()["errors"]) == fields


def test_resolve_needs_the_read_scope_of_the_domain(make_api, acme):
    response = make_api("read:contract").get(
        "/api/v1/xrefs/resolve/", {"system": "crm", "domain": "customer", "source_id": "001A"}
    )

    assert response.status_code == 403
    assert "read:customer" in response.json()["detail"]
