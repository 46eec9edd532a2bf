"""Merging golden records: sources, cross-references and references of other domains move to the survivor."""

from __future__ import annotations

import uuid

import pytest

from canonical.models import ChangeEvent, Contract, CrossReference, Customer, FieldOverride, MatchKey, SourceRecord
from canonical.services.golden import golden_survivor_id
from stewardship.models import MergeDecision, MergeMove, MergeReference, ReferenceVia
from stewardship.services.merge import MergeError, golden_record_merge
from stewardship.services.overrides import field_override_set
from tests.factories import ingest, record

pytestmark = pytest.mark.django_db


def two_customers_with_contracts():
    (a,) = ingest("crm", "customer", record("C1", 0, name="Acme", website="https://acme.example.com", city="Berlin"))
    (b,) = ingest("erp", "customer", record("E1", 1, name="ACME GmbH", website="https://acme-gmbh.example.com"))
    ingest("crm", "contract", record("K1", 0, contract_number="SOW-1", customer="C1", currency="EUR"))
    ingest("erp", "contract", record("K2", 0, contract_number="SOW-2", customer="E1", currency="EUR"))
    return uuid.UUID(a.golden_id), uuid.UUID(b.golden_id)


def test_merge_moves_sources_xrefs_keys_and_retires_the_other(steward):
    survivor, other = two_customers_with_contracts()
    decision = golden_record_merge(
        domain="customer", survivor_id=survivor, other_ids=[other], reason="same client, confirmed", user=steward
    )

    retired = Customer.objects.get(pk=other)
    assert retired.status == "merged" and retired.merged_into_id == survivor and retired.version == 2
    assert set(SourceRecord.objects.filter(domain="customer").values_list("golden_id", flat=True)) == {survivor}
    assert set(CrossReference.objects.filter(domain="customer").values_list("golden_id", flat=True)) == {survivor}
    assert set(MatchKey.objects.filter(domain="customer").values_list("golden_id", flat=True)) == {survivor}
    assert golden_survivor_id("customer", other) == survivor
    kept = Customer.objects.get(pk=survivor)
    assert kept.name == "Acme"  # crm owns the name
    assert kept.provenance["name"]["system"] == "crm"

    assert decision.retired_ids == [str(other)] and decision.actor == "stella" and decision.channel == "steward"
    moves = MergeMove.objects.filter(merge=decision)
    assert {m.source_record.source_id for m in moves} == {"E1"}
    assert all(m.from_golden_id == other and m.to_golden_id == survivor for m in moves)


def test_merge_writes_history_with_actor_channel_and_reason(steward):
    survivor, other = two_customers_with_contracts()
    golden_record_merge(domain="customer", survivor_id=survivor, other_ids=[other], reason="dup of Acme", user=steward)

    for record_ in (Customer.objects.get(pk=other), Customer.objects.get(pk=survivor)):
        last = record_.history.first()
        assert (last.history_actor, last.history_channel, last.history_change_reason) == (
            "stella",
            "steward",
            "dup of Acme",
        )
        assert last.history_user_id == steward.pk
    xref = CrossReference.objects.get(system="erp", domain="customer", source_id="E1")
    assert xref.history.first().history_change_reason == "dup of Acme"
    assert xref.history.first().golden_id == survivor and xref.history.last().golden_id == other
    decision = MergeDecision.objects.get()
    assert decision.history.get().history_channel == "steward"


def test_merge_publishes_golden_merged_events_for_survivor_and_retired(steward):
    survivor, other = two_customers_with_contracts()
    before = ChangeEvent.objects.count()
    golden_record_merge(domain="customer", survivor_id=survivor, other_ids=[other], reason="dup", user=steward)

    merged = ChangeEvent.objects.filter(id__gt=before, type="golden.merged")
    by_id = {e.golden_id: e for e in merged}
    assert set(by_id) == {survivor, other}
    assert by_id[other].data["status"] == "merged" and by_id[other].data["merged_into"] == str(survivor)
    assert by_id[survivor].data["merged_ids"] == [str(other)]
    assert all(e.actor == "stella" for e in merged)


def test_references_follow_merges_contract_of_merged_customer_points_to_survivor(steward):
    survivor, other = two_customers_with_contracts()
    k2 = Contract.objects.get(contract_number="SOW-2")
    assert k2.customer_id == other
    decision = golden_record_merge(
        domain="customer", survivor_id=survivor, other_ids=[other], reason="dup", user=steward
    )

    k2.refresh_from_db()
    assert k2.customer_id == survivor
    assert k2.history.first().history_change_reason == "dup"
    assert ChangeEvent.objects.filter(golden_id=k2.pk, type="golden.updated").latest("id").changed_fields == [
        "customer"
    ]
    log = MergeReference.objects.get(merge=decision)
    assert (log.domain, log.golden_id, log.field, log.from_golden_id, log.to_golden_id, log.via) == (
        "contract",
        k2.pk,
        "customer",
        other,
        survivor,
        ReferenceVia.RECOMPUTE,
    )
    assert Contract.objects.get(contract_number="SOW-1").customer_id == survivor


def test_a_contract_arriving_later_for_the_merged_customer_points_to_the_survivor(steward):
    survivor, other = two_customers_with_contracts()
    golden_record_merge(domain="customer", survivor_id=survivor, other_ids=[other], reason="dup", user=steward)
    ingest("erp", "contract", record("K3", 0, contract_number="SOW-3", customer="E1"))
    ingest("erp", "contract", record("K4", 0, contract_number="SOW-4", customer={"golden_id": str(other)}))
    assert Contract.objects.get(contract_number="SOW-3").customer_id == survivor
    assert Contract.objects.get(contract_number="SOW-4").customer_id == survivor


def test_an_override_that_names_the_retired_record_is_repointed_and_logged(steward):
    survivor, other = two_customers_with_contracts()
    (c,) = ingest("crm", "customer", record("C9", 0, name="Third", website="https://third.example.com"))
    k1 = Contract.objects.get(contract_number="SOW-1")
    field_override_set(
        domain="contract",
        golden_id=k1.pk,
        field="customer",
        value={"golden_id": str(other)},
        reason="pin",
        user=steward,
    )
    assert Contract.objects.get(pk=k1.pk).customer_id == other
    decision = golden_record_merge(
        domain="customer", survivor_id=survivor, other_ids=[other], reason="dup", user=steward
    )

    assert Contract.objects.get(pk=k1.pk).customer_id == survivor
    ov = FieldOverride.objects.get(golden_id=k1.pk, is_active=True)
    assert ov.value == str(survivor)
    assert MergeReference.objects.get(merge=decision, golden_id=k1.pk).via == ReferenceVia.OVERRIDE


def test_field_choices_become_steward_overrides_on_the_survivor(steward):
    survivor, other = two_customers_with_contracts()
    golden_record_merge(
        domain="customer",
        survivor_id=survivor,
        other_ids=[other],
        reason="client asked for the legal name",
        user=steward,
        field_choices={"name": {"from": str(other)}, "segment": "enterprise"},
    )
    kept = Customer.objects.get(pk=survivor)
    assert kept.name == "ACME GmbH" and kept.segment == "enterprise"
    assert kept.provenance["name"]["rule"] == "steward_override"
    ov = FieldOverride.objects.get(golden_id=survivor, field="name")
    assert ov.reason == "client asked for the legal name" and ov.created_by == steward


@pytest.mark.parametrize(
    "others, reason, field, message",
    [
        ("self", "dup", "others", "cannot be merged into itself"),
        ("unknown", "dup", "others", "no customer with id"),
        ("contract", "dup", "others", "it is a contract"),
        ("other", "  ", "reason", "a reason is required"),
        ([], "dup", "others", "at least one"),
        (["not-a-uuid"], "dup", "others", "is not a golden id"),
    ],
)
def test_bad_merge_input_is_refused_with_field_messages_and_writes_nothing(steward, others, reason, field, message):
    survivor, other = two_customers_with_contracts()
    ids = (
        {
            "self": [survivor],
            "unknown": [uuid.uuid4()],
            "contract": [Contract.objects.first().pk],
            "other": [other],
        }.get(others, others)
        if isinstance(others, str)
        else others
    )
    events = ChangeEvent.objects.count()
    with pytest.raises(MergeError) as exc:
        golden_record_merge(domain="customer", survivor_id=survivor, other_ids=ids, reason=reason, user=steward)
    assert any(message in m for m in exc.value.errors[field])
    assert ChangeEvent.objects.count() == events and MergeDecision.objects.count() == 0
    assert Customer.objects.filter(status="merged").count() == 0


def test_merging_a_merged_record_or_into_a_merged_record_is_refused(steward):
    survivor, other = two_customers_with_contracts()
    golden_record_merge(domain="customer", survivor_id=survivor, other_ids=[other], reason="dup", user=steward)
    with pytest.raises(MergeError) as exc:
        golden_record_merge(domain="customer", survivor_id=survivor, other_ids=[other], reason="again", user=steward)
    assert "already merged into" in exc.value.errors["others"][0]
    with pytest.raises(MergeError) as exc:
        golden_record_merge(domain="customer", survivor_id=other, other_ids=[survivor], reason="back", user=steward)
    assert "merge into that record instead" in exc.value.errors["survivor_id"][0]


def test_merge_chains_resolve_to_the_last_survivor(steward):
    a, b = two_customers_with_contracts()
    (c,) = ingest("hr", "customer", record("H1", 0, name="Acme Holding", website="https://acme-holding.example.com"))
    c = uuid.UUID(c.golden_id)
    golden_record_merge(domain="customer", survivor_id=a, other_ids=[b], reason="dup", user=steward)
    golden_record_merge(domain="customer", survivor_id=c, other_ids=[a], reason="dup", user=steward)
    assert golden_survivor_id("customer", b) == c
    assert set(Contract.objects.values_list("customer_id", flat=True)) == {c}
