"""The retrieve endpoint's fast path (one query, representer) answers exactly what the DRF serializer would.

For each record the expected body is rendered from `golden_serializer(domain)` over the record read by the ORM
with its xrefs (the list endpoint's path), and compared byte for byte with the retrieve answer, with and without
the read:personal scope; the ETag is the one the serializer's output gives.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.renderers import JSONRenderer

from canonical.api.fetch import golden_fetch
from canonical.api.serializers import golden_representer, golden_serializer
from canonical.api.views import _etag, xrefs_by_golden
from canonical.audit import Channel, audit_context
from canonical.domains import DOMAINS
from canonical.models import Customer
from stewardship.services.merge import golden_record_merge
from stewardship.services.overrides import field_override_set

from .conftest import ALL_READ, ingest, rec

pytestmark = pytest.mark.django_db


def _expected(domain: str, golden_id, personal: bool) -> tuple[bytes, str]:
    spec = DOMAINS[domain]
    record = spec.model.objects.select_related(*[f.name for f in spec.ref_fields]).get(pk=golden_id)
    context = {"personal": personal, "xrefs": xrefs_by_golden(domain, [record.pk])}
    data = golden_serializer(domain)(record, context=context).data
    return JSONRenderer().render(data), _etag(data)


def _assert_same(make_api, domain: str, golden_id, *, asked=None) -> None:
    url = f"/api/v1/{DOMAINS[domain].url_name}/{asked or golden_id}/"
    for personal in (False, True):
        scopes = ALL_READ + (["read:personal"] if personal else [])
        response = make_api(*scopes).get(url, HTTP_ACCEPT="application/json")
        body, etag = _expected(domain, golden_id, personal)
        assert response.status_code == 200
        assert response.content == body
        assert response["ETag"] == etag


@pytest.fixture
def world(db):
    """Records of every domain, with references, decimals, dates, enums, lists, lines and personal data."""
    ingest("erp", "legal_entity", rec("LE-1", 1, name="Acme GmbH", country="DE", tax_id="DE136695976"))
    ingest("erp", "legal_entity", rec("LE-2", 1, name="Firm AG", country="CH", is_internal=True))
    parent = ingest("crm", "customer", rec("P-1", 1, name="Acme Group", website="acme-group.com", country="DE"))
    crm = ingest(
        "crm",
        "customer",
        rec("001A", 1, name="Acme Corp", website="acme.com", country="DE", industry="Tech", parent="P-1"),
    )
    ingest(
        "erp",
        "customer",
        rec("C-100", 2, name="ACME Corporation GmbH", website="acme.com", city="Berlin", legal_entity="LE-1"),
    )
    ingest(
        "erp",
        "rate_card",
        rec("RC1", 1, code="STD", currency="EUR", lines=[{"role": "Dev", "rate": "1234.10", "unit": "day"}]),
    )
    ingest(
        "crm",
        "contract",
        rec(
            "K-1",
            1,
            contract_number="K-1",
            title="Platform",
            customer="001A",
            contract_type="fixed_fee",
            currency="EUR",
            total_value="100000.5",
            start_date="2024-02-01",
        ),
    )
    person = ingest(
        "hr",
        "resource",
        rec(
            "E1",
            1,
            first_name="Ada",
            last_name="Lovelace",
            national_id="X123",
            date_of_birth="1990-12-10",
            skills=["python", "sql"],
            cost_rate="95.50",
            worker_type="employee",
        ),
    )
    ingest(
        "psa",
        "project",
        rec(
            "PR-1",
            1,
            project_code="PR-1",
            name="Rollout",
            budget_hours="120",
            project_manager="E1",
            start_date="2024-03-01",
        ),
    )
    return {"customer": crm[0].golden_id, "parent": parent[0].golden_id, "resource": person[0].golden_id}


@pytest.mark.parametrize("domain", list(DOMAINS))
def test_retrieve_is_the_serializers_json_for_every_domain(make_api, world, domain):
    ids = list(DOMAINS[domain].model.objects.values_list("pk", flat=True))
    assert ids
    for golden_id in ids:
        _assert_same(make_api, domain, golden_id)


def test_retrieve_with_references_and_personal_fields(make_api, world):
    customer = Customer.objects.get(pk=world["customer"])
    assert customer.legal_entity_id is not None and str(customer.parent_id) == str(world["parent"])

    _assert_same(make_api, "customer", world["customer"])
    _assert_same(make_api, "resource", world["resource"])


def test_retrieve_with_a_steward_override(make_api, world):
    admin = get_user_model().objects.create_superuser("steward", password="pw-for-tests")
    field_override_set(
        domain="customer", golden_id=world["customer"], field="industry", value="Consulting", reason="known", user=admin
    )
    record = Customer.objects.get(pk=world["customer"])
    assert record.industry == "Consulting" and record.provenance["industry"]["rule"] == "steward_override"

    _assert_same(make_api, "customer", world["customer"])


def test_retrieve_of_a_merged_record_is_the_survivors_json(make_api, world):
    other = ingest("crm", "customer", rec("001B", 1, name="Acme dup", country="DE"))[0].golden_id
    with audit_context(actor="steward:test", channel=Channel.STEWARD):
        golden_record_merge(domain="customer", survivor_id=world["customer"], other_ids=[other], reason="same")

    _assert_same(make_api, "customer", world["customer"], asked=other)


def test_fetch_reads_the_record_its_references_and_xrefs_in_one_query(world, django_assert_num_queries):
    with django_assert_num_queries(1):
        record, xrefs = golden_fetch("customer", world["customer"])
        legal_entity, parent = record.legal_entity, record.parent

    orm = Customer.objects.select_related("legal_entity", "parent").get(pk=world["customer"])
    assert [(f.attname, getattr(record, f.attname)) for f in Customer._meta.concrete_fields] == [
        (f.attname, getattr(orm, f.attname)) for f in Customer._meta.concrete_fields
    ]
    assert (str(legal_entity), str(parent)) == (str(orm.legal_entity), str(orm.parent))
    if connection.vendor == "postgresql":  # in the same row
        assert xrefs == xrefs_by_golden("customer", [orm.pk])[orm.pk]
    else:  # elsewhere the caller reads them (xrefs_by_golden)
        assert xrefs is None


def test_fetch_of_an_unknown_id_is_none(db):
    import uuid

    assert golden_fetch("customer", uuid.uuid4()) == (None, None)


def test_representer_output_equals_the_serializer_data(world):
    record = Customer.objects.select_related("legal_entity", "parent").get(pk=world["customer"])
    xrefs = xrefs_by_golden("customer", [record.pk])
    for personal in (False, True):
        data = golden_serializer("customer")(record, context={"personal": personal, "xrefs": xrefs}).data
        assert golden_representer("customer", personal)(record, xrefs[record.pk]) == data


def test_on_databases_without_json_aggregates_the_xrefs_are_a_second_query(make_api, world, monkeypatch):
    from django.db import connection

    from canonical.api import fetch

    monkeypatch.setattr(fetch, "_plans", type(fetch._plans)())
    monkeypatch.setattr(connection, "vendor", "not-postgresql")

    record, xrefs = golden_fetch("customer", world["customer"])

    assert record is not None and xrefs is None
    _assert_same(make_api, "customer", world["customer"])
