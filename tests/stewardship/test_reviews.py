"""Review tasks: opened by the ingest hook when the matcher is unsure, decided by stewards, remembered."""

from __future__ import annotations

import uuid

import pytest

from canonical.models import ChangeEvent, Customer, SourceRecord
from canonical.services.golden import golden_survivor_id
from canonical.services.ingest import source_record_reprocess
from stewardship.models import MergeDecision, NotAMatch, ReviewTask
from stewardship.services.common import StewardshipError
from stewardship.services.reviews import (
    review_task_assign,
    review_task_defer,
    review_task_merge,
    review_task_not_a_match,
    review_tasks_bulk_accept,
)
from tests.factories import ingest, record

pytestmark = pytest.mark.django_db


def acme_twice():
    (first,) = ingest("crm", "customer", record("C1", 0, name="Acme", website="https://acme.example.com"))
    (second,) = ingest("erp", "customer", record("E1", 0, name="ACME", website="https://acme-erp.example.com"))
    return uuid.UUID(first.golden_id), uuid.UUID(second.golden_id)


def test_review_decision_gives_the_record_its_own_golden_and_opens_exactly_one_task(review_matcher):
    first, second = acme_twice()
    assert first != second
    task = ReviewTask.objects.get()
    assert (task.domain, task.golden_id, task.status) == ("customer", second, "open")
    assert task.source_record == SourceRecord.objects.get(source_id="E1")
    assert task.candidate_ids == [str(first)]
    (cand,) = task.candidates
    assert cand["score"] == 0.8 and cand["reason"] == "same name 'acme', no shared identifier"
    assert cand["comparisons"] == [
        {"field": "name", "value_a": "acme", "value_b": "acme", "level": "exact", "weight": 2.5}
    ]
    assert task.score == 0.8 and task.priority == 80 and task.created_by == "pytest"
    assert task.history.get().history_type == "+"


def test_re_ingesting_or_reprocessing_the_same_record_does_not_open_a_second_task(review_matcher):
    acme_twice()
    ingest("erp", "customer", record("E1", 0, name="ACME", website="https://acme-erp.example.com"))
    ingest("erp", "customer", record("E1", 1, name="ACME", website="https://acme-erp.example.com", city="Köln"))
    source_record_reprocess(SourceRecord.objects.get(source_id="E1"))
    assert ReviewTask.objects.count() == 1


def test_a_record_with_no_candidate_opens_no_task(review_matcher):
    ingest("crm", "customer", record("C1", 0, name="Acme", website="https://acme.example.com"))
    ingest("crm", "customer", record("C2", 0, name="Globex", website="https://globex.example.com"))
    assert ReviewTask.objects.count() == 0


def test_merge_from_a_task_merges_into_the_oldest_and_closes_the_task(review_matcher, steward):
    first, second = acme_twice()
    task = ReviewTask.objects.get()
    decision = review_task_merge(task_id=task.pk, reason="same client", user=steward)

    assert decision.survivor_id == first and decision.retired_ids == [str(second)] and decision.review_task == task
    assert golden_survivor_id("customer", second) == first
    task.refresh_from_db()
    assert (task.status, task.decided_by, task.decided_by_user, task.note) == (
        "merged",
        "stella",
        steward,
        "same client",
    )
    last = task.history.first()
    assert (last.history_actor, last.history_channel, last.history_change_reason) == (
        "stella",
        "steward",
        "same client",
    )
    with pytest.raises(StewardshipError) as exc:
        review_task_merge(task_id=task.pk, reason="again", user=steward)
    assert "already merged" in exc.value.errors["status"][0]


def test_not_a_match_is_remembered_and_never_proposed_again(review_matcher, steward):
    first, second = acme_twice()
    task = ReviewTask.objects.get()
    review_task_not_a_match(task_id=task.pk, reason="two different companies", user=steward)

    task.refresh_from_db()
    assert task.status == "not_a_match" and task.decided_by == "stella"
    pair = NotAMatch.objects.get()
    assert pair.review_task == task and pair.reason == "two different companies"
    assert pair.history.get().history_actor == "stella"
    # a new version of E1 arrives and is processed again: nothing is proposed
    ingest("erp", "customer", record("E1", 5, name="ACME", website="https://acme-erp.example.com", city="Bonn"))
    source_record_reprocess(SourceRecord.objects.get(source_id="E1"))
    assert ReviewTask.objects.filter(status="open").count() == 0


def test_the_hook_skips_candidates_excluded_by_a_not_a_match(review_matcher, steward):
    first, second = acme_twice()
    review_task_not_a_match(task_id=ReviewTask.objects.get().pk, reason="different", user=steward)
    # same name again, from a new record: both earlier Acmes are candidates, neither excluded for it
    ingest("hr", "customer", record("H9", 0, name="Acme", website="https://acme-hr.example.com"))
    task = ReviewTask.objects.get(status="open")
    assert set(task.candidate_ids) == {str(first), str(second)}


def test_defer_assign_and_bulk_accept(review_matcher, steward, other_steward):
    acme_twice()
    ingest("crm", "customer", record("C7", 0, name="Globex", website="https://globex.example.com"))
    ingest("erp", "customer", record("E7", 0, name="Globex", website="https://globex-erp.example.com"))
    acme_task, globex_task = ReviewTask.objects.order_by("pk")

    with pytest.raises(StewardshipError) as exc:
        review_task_defer(task_id=acme_task.pk, note=" ", user=steward)
    assert exc.value.errors == {"note": ["a note is required to defer a task"]}
    review_task_defer(task_id=acme_task.pk, note="waiting for sales", user=steward)
    review_task_assign(task_id=globex_task.pk, assignee=other_steward, user=steward)
    acme_task.refresh_from_db()
    globex_task.refresh_from_db()
    assert acme_task.status == "deferred" and acme_task.note == "waiting for sales"
    assert globex_task.assignee == other_steward
    assert globex_task.history.first().history_change_reason == "assigned to sam"

    results = review_tasks_bulk_accept(task_ids=[acme_task.pk, globex_task.pk, 999999], reason="obvious", user=steward)
    assert [r["merged"] for r in results] == [True, True, False]
    assert results[2]["errors"] == {"task": ["no review task 999999"]}
    assert MergeDecision.objects.count() == 2
    assert Customer.objects.filter(status="merged").count() == 2
    assert ChangeEvent.objects.filter(type="golden.merged").count() == 4


def test_merging_the_reviewed_record_elsewhere_closes_its_task(review_matcher, steward):
    from stewardship.services.merge import golden_record_merge

    first, second = acme_twice()
    (third,) = ingest("hr", "customer", record("H1", 0, name="Other", website="https://other.example.com"))
    golden_record_merge(
        domain="customer", survivor_id=uuid.UUID(third.golden_id), other_ids=[second], reason="dup", user=steward
    )
    task = ReviewTask.objects.get()
    assert task.status == "closed" and "was merged into" in task.note
