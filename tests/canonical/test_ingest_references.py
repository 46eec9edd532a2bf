"""References between domains: by source_id, {system, source_id} or {golden_id}; late arrivals held and resolved."""

from __future__ import annotations

import uuid

import pytest

from canonical.models import (
    ChangeEvent,
    Contract,
    Customer,
    DataException,
    PendingReference,
    Project,
    Resource,
    SourceRecord,
    SourceStatus,
)
from tests.factories import ingest, record

pytestmark = pytest.mark.django_db


def contract(source_id="K1", hours=0, customer="C1", **extra):
    attributes = {"contract_number": "SOW-1", "title": "Build", "customer": customer, "currency": "EUR", **extra}
    return record(source_id, hours, **attributes)


def test_contract_waiting_for_its_customer_is_held_with_an_open_exception():
    (result,) = ingest("crm", "contract", contract(), actor="connector:crm", request_id="r-held")
    assert result.outcome == "held" and result.golden_id is None
    sr = SourceRecord.objects.get(domain="contract")
    assert sr.status == SourceStatus.PENDING_REFERENCE
    exc = DataException.objects.get(kind="unresolved_reference", status="open")
    assert exc.source_record == sr and "customer → crm:C1" in exc.message
    assert exc.detail == {"pending": {"customer": {"system": "crm", "source_id": "C1"}}}
    assert exc.history.get().history_request_id == "r-held"
    pending = PendingReference.objects.get()
    assert (pending.field, pending.target_system_id, pending.target_domain, pending.target_source_id) == (
        "customer",
        "crm",
        "customer",
        "C1",
    )
    assert Contract.objects.count() == 0 and ChangeEvent.objects.count() == 0


def test_held_contract_is_applied_and_exception_resolved_when_the_customer_arrives():
    ingest("crm", "contract", contract())
    (customer,) = ingest("crm", "customer", record("C1", 0, name="Acme"), actor="connector:crm", request_id="r-cust")

    golden = Contract.objects.get()
    assert str(golden.customer_id) == customer.golden_id
    assert SourceRecord.objects.get(domain="contract").status == SourceStatus.APPLIED
    assert PendingReference.objects.count() == 0
    exc = DataException.objects.get(kind="unresolved_reference")
    assert exc.status == "resolved" and exc.resolution_note == "references resolved"
    created = golden.history.get()
    assert (created.history_actor, created.history_request_id) == ("connector:crm", "r-cust")
    assert set(ChangeEvent.objects.values_list("domain", flat=True)) == {"customer", "contract"}


def test_reference_to_another_systems_record_by_system_and_source_id():
    (customer,) = ingest("crm", "customer", record("C1", 0, name="Acme"))
    (result,) = ingest("erp", "contract", contract(customer={"system": "crm", "source_id": "C1"}))
    assert result.outcome == "created"
    assert str(Contract.objects.get().customer_id) == customer.golden_id


def test_reference_by_golden_id():
    (customer,) = ingest("crm", "customer", record("C1", 0, name="Acme"))
    (result,) = ingest("crm", "contract", contract(customer={"golden_id": customer.golden_id}))
    assert result.outcome == "created"
    assert str(Contract.objects.get().customer_id) == customer.golden_id


def test_reference_to_an_unknown_golden_id_is_a_validation_exception():
    missing = str(uuid.uuid4())
    (result,) = ingest("crm", "contract", contract(customer={"golden_id": missing}))
    assert result.outcome == "exception"
    assert result.errors == {"customer": [f"no customer with golden id {missing}"]}
    assert SourceRecord.objects.get().status == SourceStatus.INVALID
    assert DataException.objects.get().kind == "validation"
    assert PendingReference.objects.count() == 0 and Contract.objects.count() == 0


def test_reference_to_an_unknown_system_is_a_validation_exception():
    (result,) = ingest("crm", "contract", contract(customer={"system": "nope", "source_id": "C1"}))
    assert result.outcome == "exception"
    assert "unknown system 'nope'" in result.errors["customer"][0]


def test_golden_id_of_another_domain_is_not_accepted_as_a_reference():
    (resource,) = ingest("hr", "resource", record("W1", 0, first_name="Ada", last_name="Lovelace"))
    (result,) = ingest("crm", "contract", contract(customer={"golden_id": resource.golden_id}))
    assert result.outcome == "exception" and "customer" in result.errors


def test_optional_reference_not_yet_received_is_applied_and_filled_when_the_target_arrives():
    (project,) = ingest("psa", "project", record("P1", 0, project_code="PRJ-1", name="Rollout", project_manager="W9"))
    assert project.outcome == "created"
    golden = Project.objects.get()
    assert golden.project_manager_id is None
    assert DataException.objects.filter(status="open").count() == 0
    assert PendingReference.objects.get().field == "project_manager"

    (manager,) = ingest("psa", "resource", record("W9", 0, first_name="Grace", last_name="Hopper"))
    golden.refresh_from_db()
    assert str(golden.project_manager_id) == manager.golden_id
    assert Resource.objects.get().pk == golden.project_manager_id
    assert PendingReference.objects.count() == 0
    assert golden.version == 2 and golden.history.count() == 2
    event = ChangeEvent.objects.filter(golden_id=golden.pk).last()
    assert event.changed_fields == ["project_manager"] and event.origin_system_id == "psa"


def test_a_contract_moved_to_a_customer_not_yet_received_keeps_its_customer_until_it_arrives():
    (first,) = ingest("crm", "customer", record("C1", 0, name="Acme"))
    ingest("crm", "contract", contract())
    (moved,) = ingest("crm", "contract", contract(hours=1, customer="C2", title="Build v2"))
    golden = Contract.objects.get()
    assert moved.outcome == "held"
    assert str(golden.customer_id) == first.golden_id and golden.title == "Build"  # last valid version stays
    exc = DataException.objects.get(status="open")
    assert exc.kind == "unresolved_reference" and exc.golden_id == golden.pk

    (second,) = ingest("crm", "customer", record("C2", 0, name="Globex"))
    golden.refresh_from_db()
    exc.refresh_from_db()
    assert str(golden.customer_id) == second.golden_id and golden.title == "Build v2"
    assert exc.status == "resolved"


def test_references_follow_the_target_even_when_it_arrives_in_the_same_batch():
    results = ingest(
        "crm",
        "customer",
        record("C2", 0, name="Acme Germany", parent="C1"),
        record("C1", 0, name="Acme Group"),
    )
    assert [r.outcome for r in results] == ["created", "created"]
    child = Customer.objects.get(name="Acme Germany")
    assert str(child.parent_id) == results[1].golden_id
