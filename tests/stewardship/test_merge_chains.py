"""Merges and unmerges after other merges, pushes, overrides and deletes: an unmerge puts back what the merge took,
past later merges, and leaves nothing of the undone merge behind (found by a review of sequences of operations)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from django.db import connection

import canonical.services.ingest as ingest_service
from canonical.audit import Channel, audit_context
from canonical.models import Contract, CrossReference, Customer, DataException, FieldOverride, SourceRecord
from stewardship.models import MergeMove, NotAMatch, ReviewTask
from stewardship.services.common import StewardshipError
from stewardship.services.merge import golden_record_merge, golden_record_unmerge
from stewardship.services.reviews import review_task_not_a_match
from tests.factories import ingest, record


def customer(system: str, source_id: str, name: str, **attributes) -> uuid.UUID:
    website = f"https://{source_id.lower()}.example.com"
    (result,) = ingest(system, "customer", record(source_id, 0, name=name, website=website, **attributes))
    return uuid.UUID(result.golden_id)


def source(source_id: str) -> SourceRecord:
    return SourceRecord.objects.get(domain="customer", source_id=source_id)


def merge(survivor: uuid.UUID, other: uuid.UUID, user, **kwargs):
    return golden_record_merge(
        domain="customer", survivor_id=survivor, other_ids=[other], reason="duplicate", user=user, **kwargs
    )


def unmerge(source_id: str, user):
    return golden_record_unmerge(domain="customer", source_record_id=source(source_id).pk, reason="undo", user=user)


def active_pairs() -> set[frozenset[str]]:
    return {
        frozenset((p.source_record_a.source_id, p.source_record_b.source_id))
        for p in NotAMatch.objects.filter(is_active=True).select_related("source_record_a", "source_record_b")
    }


@pytest.mark.django_db
def test_unmerge_after_a_chain_of_merges_puts_the_source_back_into_the_record_it_came_from(steward):
    a, b, c = customer("crm", "A1", "Alpha"), customer("crm", "B1", "Beta"), customer("crm", "C1", "Gamma")
    ingest("crm", "contract", record("KB", 0, contract_number="SOW-B", customer="B1", currency="EUR"))
    merge(b, a, steward)  # A into B
    merge(c, b, steward)  # B into C

    result = unmerge("A1", steward)

    assert (result.golden_id, result.restored) == (a, True)
    restored = Customer.objects.get(pk=a)
    assert (restored.status, restored.merged_into_id, restored.name) == ("active", None, "Alpha")
    retired_b = Customer.objects.get(pk=b)
    assert (retired_b.status, retired_b.merged_into_id) == ("merged", c)  # B stays in C, B1 with it
    assert source("B1").golden_id == c and Customer.objects.get(pk=c).status == "active"
    assert Contract.objects.get(contract_number="SOW-B").customer_id == c
    assert not MergeMove.objects.filter(source_record=source("A1"), unmerged_at__isnull=True).exists()
    assert active_pairs() == {frozenset(("A1", "B1")), frozenset(("A1", "C1"))}

    # and B1 can still be split out: B comes back from C
    result = unmerge("B1", steward)
    assert (result.golden_id, result.restored) == (b, True)
    assert (
        Customer.objects.get(pk=b).status == "active" and Contract.objects.get(contract_number="SOW-B").customer_id == b
    )


@pytest.mark.django_db
def test_a_pushed_cross_reference_a_source_record_has_since_linked_through_stays_with_that_source(steward):
    a, b = customer("crm", "A1", "Alpha"), customer("crm", "B1", "Beta")
    with audit_context(actor="connector:erp", channel=Channel.CONNECTOR, reason="push"):
        CrossReference.objects.create(system_id="erp", domain="customer", source_id="E9", golden_id=a)
    merge(b, a, steward)
    ingest("erp", "customer", record("E9", 1, name="Alpha AG", website="https://e9.example.com"))
    assert source("E9").golden_id == b

    unmerge("A1", steward)

    xref = CrossReference.objects.get(system="erp", domain="customer", source_id="E9")
    assert xref.source_record_id == source("E9").pk and xref.golden_id == source("E9").golden_id == b


@pytest.mark.django_db
def test_a_pushed_cross_reference_nothing_claimed_goes_back_with_its_record(steward):
    a, b = customer("crm", "A1", "Alpha"), customer("crm", "B1", "Beta")
    with audit_context(actor="connector:erp", channel=Channel.CONNECTOR, reason="push"):
        CrossReference.objects.create(system_id="erp", domain="customer", source_id="E9", golden_id=a)
    merge(b, a, steward)
    assert CrossReference.objects.get(source_id="E9").golden_id == b

    unmerge("A1", steward)

    assert CrossReference.objects.get(source_id="E9").golden_id == a


@pytest.mark.django_db
def test_the_overrides_a_merge_pinned_are_lifted_when_it_is_undone(steward):
    a, b = customer("crm", "A1", "Alpha"), customer("crm", "B1", "Beta")
    decision = merge(a, b, steward, field_choices={"name": {"from": str(b)}})
    assert Customer.objects.get(pk=a).name == "Beta"
    (pinned,) = decision.override_ids

    unmerge("B1", steward)

    assert Customer.objects.get(pk=a).name == "Alpha" and Customer.objects.get(pk=b).name == "Beta"
    override = FieldOverride.objects.get(pk=pinned)
    assert not override.is_active
    assert override.history.first().history_change_reason == "undo"
    assert not FieldOverride.objects.filter(golden_id=a, is_active=True).exists()


@pytest.mark.django_db
def test_an_override_a_steward_set_after_the_merge_is_kept_by_the_unmerge(steward):
    from stewardship.services.overrides import field_override_set

    a, b = customer("crm", "A1", "Alpha"), customer("crm", "B1", "Beta")
    merge(a, b, steward, field_choices={"name": {"from": str(b)}})
    field_override_set(
        domain="customer", golden_id=a, field="name", value="Alpha Group", reason="legal name", user=steward
    )

    unmerge("B1", steward)

    assert Customer.objects.get(pk=a).name == "Alpha Group"


@pytest.mark.django_db
def test_sources_that_came_from_one_record_are_not_made_not_a_match_of_each_other_by_splitting_them_back(steward):
    a, b = customer("crm", "A1", "Alpha"), customer("crm", "B1", "Beta")
    ingest("erp", "customer", record("B2", 0, name="Beta", website="https://b1.example.com"))
    assert source("B2").golden_id == b
    merge(a, b, steward)

    unmerge("B1", steward)
    unmerge("B2", steward)

    assert source("B1").golden_id == source("B2").golden_id == b
    assert active_pairs() == {frozenset(("B1", "A1")), frozenset(("B2", "A1"))}


@pytest.mark.django_db
def test_a_review_task_whose_candidate_was_merged_into_it_by_a_chain_is_closed(review_matcher, steward):
    a, b = customer("crm", "C1", "Acme"), customer("erp", "E1", "ACME")
    c = customer("hr", "H1", "Zeta")
    task = ReviewTask.objects.get(golden_id=b)
    assert [x["golden_id"] for x in task.candidates] == [str(a)]
    merge(c, a, steward)  # A into C
    merge(b, c, steward)  # C into B: the candidate is part of the record under review

    task.refresh_from_db()
    assert task.status == "closed"
    with pytest.raises(StewardshipError):
        review_task_not_a_match(task_id=task.pk, reason="no", user=steward)
    assert not NotAMatch.objects.exists()


@pytest.mark.django_db
def test_not_a_match_on_a_candidate_merged_into_the_record_since_records_no_pair_inside_it(review_matcher, steward):
    a, b = customer("crm", "C1", "Acme"), customer("erp", "E1", "ACME")
    task = ReviewTask.objects.get(golden_id=b)
    merge(b, a, steward, review_task=None)
    ReviewTask.objects.filter(pk=task.pk).update(status="open", candidates=task.candidates)  # as a stale copy had it

    review_task_not_a_match(task_id=task.pk, reason="not the same", user=steward)

    assert not NotAMatch.objects.exists()


@pytest.mark.django_db
def test_a_retired_records_own_open_exceptions_are_resolved_by_the_merge(steward):
    a, b = customer("crm", "A1", "Alpha"), customer("crm", "B1", "Beta")
    ingest("erp", "customer", record("B2", 0, website="https://b1.example.com", city="Bonn"))
    ingest("crm", "customer", record("B1", 1, deleted=True))  # B keeps its name as `retained`
    exception = DataException.objects.get(kind="incomplete", golden_id=b, status="open")

    merge(a, b, steward)

    exception.refresh_from_db()
    assert exception.status == "resolved" and str(a) in exception.resolution_note
    assert not DataException.objects.filter(golden_id=b, status="open").exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_merge_waits_for_an_ingest_of_a_retired_records_source_instead_of_deadlocking(steward, monkeypatch):
    """An ingest locks a source record, then its golden record; a merge locked the golden records, then moved
    their source records: the opposite order. Both take the domain's match locks first now, so the merge waits."""
    from tests.canonical.test_ingest_concurrency import _waiting_for_a_match_lock

    a, b = customer("crm", "A1", "Alpha"), customer("erp", "B1", "Beta")
    real = ingest_service.golden_survivor_lock
    holding, seen_waiting, errors = threading.Event(), [], {}

    def hold_between_the_two_locks(**kwargs):
        if threading.current_thread().name == "ingest":
            holding.set()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if _waiting_for_a_match_lock():
                    seen_waiting.append(True)
                    break
                time.sleep(0.02)
        return real(**kwargs)

    monkeypatch.setattr(ingest_service, "golden_survivor_lock", hold_between_the_two_locks)

    def run(name, fn):
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors[name] = exc
        finally:
            connection.close()

    update = record("B1", 1, name="Beta AG", website="https://b1.example.com")
    threads = [
        threading.Thread(name="ingest", target=run, args=("ingest", lambda: ingest("erp", "customer", update))),
        threading.Thread(target=run, args=("merge", lambda: (holding.wait(10), merge(a, b, steward)))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive()

    assert errors == {}
    assert seen_waiting == [True]
    assert source("B1").golden_id == a and Customer.objects.get(pk=b).status == "merged"
    assert SourceRecord.objects.get(source_id="B1").values["name"] == "Beta AG"


@pytest.mark.django_db
def test_merging_a_parent_into_its_child_leaves_the_child_without_a_parent_not_its_own(steward):
    parent = customer("crm", "P1", "Holding")
    (child_result,) = ingest("crm", "customer", record("S1", 0, name="Subsidiary", parent="P1"))
    child = uuid.UUID(child_result.golden_id)
    assert Customer.objects.get(pk=child).parent_id == parent

    merge(child, parent, steward)

    merged = Customer.objects.get(pk=child)
    assert merged.parent_id is None and merged.status == "active"
    assert Customer.objects.get(pk=parent).merged_into_id == child


def _published_versions(golden_id: uuid.UUID) -> list[int]:
    from canonical.models import ChangeEvent

    return sorted(ChangeEvent.objects.filter(golden_id=golden_id).values_list("version", flat=True))


@pytest.mark.django_db
def test_a_merge_and_its_unmerge_publish_one_event_per_record_and_every_version_once(steward):
    from canonical.models import ChangeEvent

    a, b = customer("crm", "A1", "Alpha"), customer("crm", "B1", "Beta", city="Paris")
    last = ChangeEvent.objects.order_by("-id").first().id

    merge(a, b, steward, field_choices={"name": {"from": str(b)}})

    events = list(ChangeEvent.objects.filter(id__gt=last).order_by("id").values_list("golden_id", "type", "version"))
    assert events == [
        (b, "golden.merged", Customer.objects.get(pk=b).version),
        (a, "golden.merged", Customer.objects.get(pk=a).version),
    ]
    last = ChangeEvent.objects.order_by("-id").first().id

    unmerge("B1", steward)

    events = list(ChangeEvent.objects.filter(id__gt=last).order_by("id").values_list("golden_id", "type", "version"))
    assert events == [
        (a, "golden.unmerged", Customer.objects.get(pk=a).version),
        (b, "golden.unmerged", Customer.objects.get(pk=b).version),
    ]
    for golden_id in (a, b):  # every version of each record was published, once
        assert _published_versions(golden_id) == list(range(1, Customer.objects.get(pk=golden_id).version + 1))
    unmerged = ChangeEvent.objects.filter(golden_id=b).order_by("-id").first()
    assert {"status", "sources"} <= set(unmerged.changed_fields)


@pytest.mark.django_db
def test_review_survivors_reads_statuses_with_the_chain(django_assert_num_queries):
    """review_survivors: every id's survivor through merge chains, and the survivors not merged; the statuses come
    with the chain's reads (one query a chain step, none more), and a record whose status says merged though it
    names no survivor is not live."""
    import uuid

    from canonical.models import GoldenStatus
    from stewardship.services.reviews import review_survivors
    from tests.factories import CustomerFactory

    c = CustomerFactory()
    b = CustomerFactory()
    a = CustomerFactory(status=GoldenStatus.MERGED, merged_into=b)
    odd = CustomerFactory(status=GoldenStatus.MERGED)  # no survivor named: its own, but not live
    missing = uuid.uuid4()
    with django_assert_num_queries(1):
        assert review_survivors("customer", [c.pk, b.pk]) == ({c.pk: c.pk, b.pk: b.pk}, {c.pk, b.pk})
    with django_assert_num_queries(2):
        survivors, live = review_survivors("customer", [a.pk, c.pk, odd.pk, missing])
    assert survivors == {a.pk: b.pk, c.pk: c.pk, odd.pk: odd.pk}
    assert live == {b.pk, c.pk}


@pytest.mark.django_db
def test_a_reference_by_golden_id_to_a_retired_record_follows_it_back_when_an_unmerge_restores_it(steward):
    a, b = customer("crm", "A1", "Alpha"), customer("crm", "B1", "Beta")
    merge(a, b, steward)
    # sent while B was merged: resolved to its survivor A (the sender named B, in 32 hex digits)
    ingest("erp", "contract", record("K1", 0, contract_number="SOW-1", customer={"golden_id": b.hex.upper()}))
    ingest("erp", "contract", record("K2", 0, contract_number="SOW-2", customer={"golden_id": str(a)}))
    k1, k2 = Contract.objects.get(contract_number="SOW-1"), Contract.objects.get(contract_number="SOW-2")
    assert (k1.customer_id, k2.customer_id) == (a, a)

    result = unmerge("B1", steward)

    assert result.restored
    assert Contract.objects.get(pk=k1.pk).customer_id == b  # its sender named B
    assert Contract.objects.get(pk=k2.pk).customer_id == a
    assert {"domain": "contract", "golden_id": str(k1.pk), "field": "customer"} in result.moved_references
    assert SourceRecord.objects.get(system="erp", source_id="K1").values["customer"]["golden_id"] == str(b)


@pytest.mark.django_db
def test_a_reference_to_a_record_merged_into_the_restored_one_follows_it_back(steward):
    a, b, c = customer("crm", "A1", "Alpha"), customer("crm", "B1", "Beta"), customer("crm", "C1", "Gamma")
    merge(b, a, steward)  # A into B
    merge(c, b, steward)  # B into C
    ingest("erp", "contract", record("K1", 0, contract_number="SOW-1", customer={"golden_id": str(a)}))
    assert Contract.objects.get(contract_number="SOW-1").customer_id == c

    result = unmerge("B1", steward)  # B comes back (with B1 only); A, merged into B, leads to B again

    assert (result.golden_id, result.restored) == (b, True)
    assert Contract.objects.get(contract_number="SOW-1").customer_id == b
