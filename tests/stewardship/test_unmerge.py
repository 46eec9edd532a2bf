"""Unmerge: a source record is split out again; a merge followed by unmerges returns the exact prior state."""

from __future__ import annotations

import uuid

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canonical.models import ChangeEvent, Contract, CrossReference, Customer, MatchKey, SourceRecord
from canonical.services.golden import golden_survivor_id, golden_values
from stewardship.models import MergeMove, NotAMatch
from stewardship.services.merge import MergeError, golden_record_merge, golden_record_unmerge
from tests.factories import ingest, record

pytestmark = pytest.mark.django_db


def merged_pair(steward):
    (a,) = ingest("crm", "customer", record("C1", 0, name="Acme", website="https://acme.example.com", city="Berlin"))
    (b,) = ingest("erp", "customer", record("E1", 1, name="ACME GmbH", website="https://acme-gmbh.example.com"))
    ingest("erp", "contract", record("K2", 0, contract_number="SOW-2", customer="E1", currency="EUR"))
    a, b = uuid.UUID(a.golden_id), uuid.UUID(b.golden_id)
    golden_record_merge(domain="customer", survivor_id=a, other_ids=[b], reason="dup", user=steward)
    return a, b


def test_unmerge_restores_the_retired_record_with_its_references(steward):
    a, b = merged_pair(steward)
    e1 = SourceRecord.objects.get(system="erp", domain="customer", source_id="E1")
    result = golden_record_unmerge(domain="customer", source_record_id=e1.pk, reason="different clients", user=steward)

    assert result.restored and result.golden_id == b and result.from_golden_id == a and not result.created
    restored = Customer.objects.get(pk=b)
    assert restored.status == "active" and restored.merged_into_id is None and restored.name == "ACME GmbH"
    assert Customer.objects.get(pk=a).name == "Acme"
    assert SourceRecord.objects.get(pk=e1.pk).golden_id == b
    assert CrossReference.objects.get(source_record=e1).golden_id == b
    assert set(MatchKey.objects.filter(source_record=e1).values_list("golden_id", flat=True)) == {b}
    assert Contract.objects.get(contract_number="SOW-2").customer_id == b
    assert golden_survivor_id("customer", b) == b
    assert MergeMove.objects.get(source_record=e1).unmerged_at is not None


def test_unmerge_is_audited_published_and_remembered_as_not_a_match(steward):
    a, b = merged_pair(steward)
    e1 = SourceRecord.objects.get(system="erp", domain="customer", source_id="E1")
    before = ChangeEvent.objects.count()
    golden_record_unmerge(domain="customer", source_record_id=e1.pk, reason="different clients", user=steward)

    events = ChangeEvent.objects.filter(id__gt=before, type="golden.unmerged")
    assert {e.golden_id for e in events} == {a, b}
    assert all(e.actor == "stella" for e in events)
    for golden in (a, b):
        last = Customer.objects.get(pk=golden).history.first()
        assert (last.history_actor, last.history_channel, last.history_change_reason) == (
            "stella",
            "steward",
            "different clients",
        )
    c1 = SourceRecord.objects.get(system="crm", domain="customer", source_id="C1")
    pair = NotAMatch.objects.get()
    assert {pair.source_record_a_id, pair.source_record_b_id} == {c1.pk, e1.pk}
    assert pair.origin == "unmerge" and pair.reason == "different clients" and pair.created_by == "stella"
    assert pair.history.get().history_channel == "steward"
    with pytest.raises(MergeError) as exc:
        golden_record_merge(domain="customer", survivor_id=a, other_ids=[b], reason="again", user=steward)
    assert "not a match" in exc.value.errors["others"][0]


def test_unmerge_of_a_record_linked_by_the_matcher_creates_a_new_golden_record(steward):
    (a,) = ingest("crm", "customer", record("C1", 0, name="Acme", website="https://acme.example.com"))
    ingest("erp", "customer", record("E1", 1, name="Acme Ltd", website="https://acme.example.com"))
    a = uuid.UUID(a.golden_id)
    e1 = SourceRecord.objects.get(source_id="E1")
    assert e1.golden_id == a
    result = golden_record_unmerge(domain="customer", source_record_id=e1.pk, reason="wrong link", user=steward)

    assert result.created and not result.restored and result.golden_id != a
    new = Customer.objects.get(pk=result.golden_id)
    assert new.name == "Acme Ltd" and new.status == "active"
    assert ChangeEvent.objects.filter(golden_id=new.pk, type="golden.created").exists()
    assert ChangeEvent.objects.filter(golden_id=new.pk, type="golden.unmerged").exists()
    # the re-ingested record stays where the steward put it
    ingest("erp", "customer", record("E1", 2, name="Acme Ltd.", website="https://acme.example.com"))
    assert SourceRecord.objects.get(pk=e1.pk).golden_id == new.pk


@pytest.mark.parametrize(
    "which, reason, field, message",
    [
        ("only", "x", "source_record", "nothing to split"),
        ("contract", "x", "source_record", "is a contract, not a customer"),
        ("e1", "", "reason", "a reason is required"),
        ("junk", "x", "source_record", "is not a source record id"),
    ],
)
def test_bad_unmerge_input_is_refused_and_writes_nothing(steward, which, reason, field, message):
    a, b = merged_pair(steward)
    (c,) = ingest("hr", "customer", record("H1", 0, name="Solo", website="https://solo.example.com"))
    ids = {
        "only": SourceRecord.objects.get(source_id="H1").pk,
        "contract": SourceRecord.objects.get(source_id="K2").pk,
        "e1": SourceRecord.objects.get(source_id="E1").pk,
        "junk": "abc",
    }
    events = ChangeEvent.objects.count()
    with pytest.raises(MergeError) as exc:
        golden_record_unmerge(domain="customer", source_record_id=ids[which], reason=reason, user=steward)
    assert any(message in m for m in exc.value.errors[field])
    assert ChangeEvent.objects.count() == events and NotAMatch.objects.count() == 0


# --- the property: merge then unmerge returns the exact prior state -------------------------------------------


def snapshot() -> dict:
    def goldens(model):
        return {
            r.pk: (r.status, r.merged_into_id, golden_values(r), r.provenance) for r in model.objects.order_by("pk")
        }

    return {
        "customers": goldens(Customer),
        "contracts": goldens(Contract),
        "xrefs": set(CrossReference.objects.values_list("system", "domain", "source_id", "golden_id")),
        "sources": dict(SourceRecord.objects.values_list("pk", "golden_id")),
        "keys": set(MatchKey.objects.values_list("source_record", "key_type", "key_value", "golden_id")),
    }


@st.composite
def scenarios(draw):
    n = draw(st.integers(min_value=2, max_value=4))
    customers = []
    for i in range(n):
        sources = []
        for j in range(draw(st.integers(min_value=1, max_value=2))):
            attrs = {
                "name": draw(st.sampled_from(["Acme", "Acme GmbH", "Globex", "Initech"])),
                "website": f"https://c{i}.example.com",
                "city": draw(st.sampled_from([None, "Berlin", "Paris"])),
            }
            sources.append((draw(st.sampled_from(["crm", "erp"])), f"C{i}-{j}", draw(st.integers(0, 5)), attrs))
        customers.append(sources)
    contracts = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, 1)), max_size=3))
    merges = draw(
        st.lists(
            st.tuples(st.integers(0, n - 1), st.sets(st.integers(0, n - 1), min_size=1, max_size=n - 1)),
            min_size=1,
            max_size=2,
        )
    )
    return customers, contracts, merges


def _run(customers, contracts, merges, user):
    goldens = []
    for sources in customers:
        for system, source_id, hours, attrs in sources:
            (res,) = ingest(system, "customer", record(source_id, hours, **attrs))
        goldens.append(uuid.UUID(res.golden_id))
    for k, (ci, si) in enumerate(contracts):
        system, source_id, _, _ = customers[ci][min(si, len(customers[ci]) - 1)]
        ref = {"system": system, "source_id": source_id}
        ingest("psa", "contract", record(f"K{k}", 0, contract_number=f"SOW-{k}", customer=ref))
    before = snapshot()
    original = dict(SourceRecord.objects.filter(domain="customer").values_list("pk", "golden_id"))

    merged_any = False
    for survivor_index, other_indexes in merges:
        survivor = golden_survivor_id("customer", goldens[survivor_index])
        others = {golden_survivor_id("customer", goldens[i]) for i in other_indexes} - {survivor}
        if not others:
            continue
        golden_record_merge(
            domain="customer", survivor_id=survivor, other_ids=sorted(others, key=str), reason="prop", user=user
        )
        merged_any = True
    if merged_any:
        assert snapshot() != before

    for _ in range(20):  # unmerge every source record that is not at home, until none is left
        away = [
            pk
            for pk, golden in SourceRecord.objects.filter(domain="customer").values_list("pk", "golden_id")
            if golden != original[pk]
        ]
        if not away:
            break
        for pk in away:
            try:
                golden_record_unmerge(domain="customer", source_record_id=pk, reason="undo", user=user)
            except MergeError as exc:
                assert "nothing to split" in exc.errors["source_record"][0]
    after = snapshot()
    assert after == before


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=scenarios())
def test_merge_then_unmerge_returns_the_exact_prior_state(steward, scenario):
    customers, contracts, merges = scenario
    with transaction.atomic():
        _run(customers, contracts, merges, steward)
        transaction.set_rollback(True)
