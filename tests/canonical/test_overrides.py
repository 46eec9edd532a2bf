"""Steward overrides: beat every system, audited with channel steward and a reason, removable."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model

from canonical.models import ChangeEvent, Contract, Customer, FieldOverride
from stewardship.services.overrides import OverrideError, field_override_clear, field_override_set
from tests.factories import ingest, record

pytestmark = pytest.mark.django_db

SITE = "https://acme.example.com"


@pytest.fixture
def steward():
    return get_user_model().objects.create_user("sam", password="x")


@pytest.fixture
def customer():
    (result,) = ingest("crm", "customer", record("C1", 0, name="Acme", website=SITE, industry="Software"))
    return Customer.objects.get(pk=result.golden_id)


def test_steward_override_wins_over_the_owner_and_is_audited(customer, steward):
    field_override_set(
        domain="customer",
        golden_id=customer.pk,
        field="name",
        value="Acme Corporation",
        reason="legal name",
        user=steward,
    )
    customer.refresh_from_db()
    assert customer.name == "Acme Corporation"
    assert customer.provenance["name"]["rule"] == "steward_override"
    row = customer.history.first()
    assert (row.history_channel, row.history_actor, row.history_change_reason) == ("steward", "sam", "legal name")
    assert row.history_user_id == steward.pk
    override = FieldOverride.objects.get(is_active=True)
    assert override.value == "Acme Corporation" and override.created_by == steward
    assert override.history.get().history_channel == "steward"
    event = ChangeEvent.objects.filter(golden_id=customer.pk).last()
    assert event.changed_fields == ["name"] and event.origin_system_id is None and event.actor == "sam"

    # The owner's later value does not beat the override...
    (update,) = ingest("crm", "customer", record("C1", 1, name="Acme Inc", website=SITE, industry="Software"))
    customer.refresh_from_db()
    assert customer.name == "Acme Corporation"
    assert update.outcome == "unchanged"


def test_clearing_an_override_restores_survivorship(customer, steward):
    field_override_set(
        domain="customer", golden_id=customer.pk, field="name", value="Pinned", reason="r1", user=steward
    )
    ingest("crm", "customer", record("C1", 1, name="Acme Inc", website=SITE, industry="Software"))
    history = customer.history.count()

    field_override_clear(
        domain="customer", golden_id=customer.pk, field="name", reason="client confirmed", user=steward
    )

    customer.refresh_from_db()
    assert customer.name == "Acme Inc" and customer.provenance["name"]["rule"] == "owner"
    assert customer.history.count() == history + 1
    row = customer.history.first()
    assert (row.history_channel, row.history_change_reason) == ("steward", "client confirmed")
    override = FieldOverride.objects.get()
    assert override.is_active is False
    assert [h.is_active for h in override.history.order_by("history_id")] == [True, False]


def test_a_new_override_replaces_the_previous_one_with_history(customer, steward):
    field_override_set(domain="customer", golden_id=customer.pk, field="industry", value="IT", reason="a", user=steward)
    field_override_set(
        domain="customer", golden_id=customer.pk, field="industry", value="Media", reason="b", user=steward
    )
    customer.refresh_from_db()
    assert customer.industry == "Media"
    assert list(FieldOverride.objects.order_by("pk").values_list("value", "is_active")) == [
        ("IT", False),
        ("Media", True),
    ]


@pytest.mark.parametrize(
    ("field", "value", "reason", "error_field"),
    [
        ("nme", "x", "why", "field"),
        ("name", "x", "  ", "reason"),
        ("country", "Germany", "why", "value"),
        ("name", "", "why", "value"),  # a required field cannot be pinned empty
        ("legal_entity", {"golden_id": str(uuid.uuid4())}, "why", "value"),  # unknown target
        ("legal_entity", "L1", "why", "value"),  # a reference override takes a golden id
    ],
)
def test_invalid_override_is_refused_with_field_messages_and_changes_nothing(
    customer, steward, field, value, reason, error_field
):
    history = customer.history.count()
    with pytest.raises(OverrideError) as info:
        field_override_set(
            domain="customer", golden_id=customer.pk, field=field, value=value, reason=reason, user=steward
        )
    assert info.value.errors[error_field]
    assert FieldOverride.objects.count() == 0
    assert customer.history.count() == history


def test_override_of_an_unknown_record_is_refused(steward):
    with pytest.raises(OverrideError) as info:
        field_override_set(domain="customer", golden_id=uuid.uuid4(), field="name", value="x", reason="r", user=steward)
    assert "golden_id" in info.value.errors


def test_reference_override_points_to_an_existing_record(steward):
    (acme,) = ingest("crm", "customer", record("C1", 0, name="Acme"))
    (globex,) = ingest("crm", "customer", record("C2", 0, name="Globex"))
    ingest("crm", "contract", record("K1", 0, contract_number="SOW-1", customer="C1"))
    contract = Contract.objects.get()
    field_override_set(
        domain="contract",
        golden_id=contract.pk,
        field="customer",
        value={"golden_id": globex.golden_id},
        reason="signed by the subsidiary",
        user=steward,
    )
    contract.refresh_from_db()
    assert str(contract.customer_id) == globex.golden_id != acme.golden_id


def test_tax_id_override_is_checked_against_the_records_country(steward):
    (entity,) = ingest("erp", "legal_entity", record("L1", 0, name="Acme GmbH", country="DE"))
    with pytest.raises(OverrideError) as info:
        field_override_set(
            domain="legal_entity", golden_id=entity.golden_id, field="tax_id", value="DE123", reason="r", user=steward
        )
    assert "not a valid tax id for DE" in info.value.errors["value"][0]


def test_an_optional_reference_can_be_pinned_empty(steward):
    ingest("crm", "customer", record("C1", 0, name="Acme Group"))
    (child,) = ingest("crm", "customer", record("C2", 0, name="Acme DE", parent="C1"))
    field_override_set(
        domain="customer", golden_id=child.golden_id, field="parent", value=None, reason="r", user=steward
    )
    assert Customer.objects.get(pk=child.golden_id).parent_id is None
