"""The workbench's selectors and bulk actions (stewardship/services/workbench.py) and the roles, without a browser."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from canonical.models import Customer, SourceRecord
from stewardship import roles
from stewardship.models import ReviewTask
from stewardship.services.common import StewardshipError
from stewardship.services.merge import golden_record_unmerge
from stewardship.services.overrides import field_override_set
from stewardship.services.reviews import review_task_merge, review_task_not_a_match
from stewardship.services.workbench import (
    QueueFilters,
    dashboard_stats,
    data_exceptions_act,
    golden_record_page,
    review_compare,
    review_queue,
    review_queue_counts,
    review_queue_filters_parse,
    review_queue_rows,
    review_tasks_assign,
)
from tests.factories import (
    ContractFactory,
    CustomerFactory,
    DataExceptionFactory,
    ResourceFactory,
    SourceRecordFactory,
    ingest,
    record,
)

pytestmark = pytest.mark.django_db


def steward_of(username: str, *domains: str, **extra):
    user = get_user_model().objects.create_user(username, password="pw", is_staff=True, **extra)
    for domain in domains:
        user.groups.add(Group.objects.get(name=roles.DOMAIN_STEWARDS[domain]))
    return user


def task_for(a, b, *, score: float = 0.8, domain: str = "customer", age_days: int = 0, system: str | None = None):
    """A pending review task of record `a` against candidate `b`, opened `age_days` ago."""
    sr = SourceRecordFactory(system__code=system, domain=domain, golden_id=a.pk) if system else None
    task = ReviewTask.objects.create(
        domain=domain,
        golden_id=a.pk,
        source_record=sr,
        candidates=[
            {
                "golden_id": str(b.pk),
                "score": score,
                "reason": "similar name",
                "comparisons": [{"field": "name", "value_a": "x", "value_b": "x", "level": "exact", "weight": 2.5}],
            }
        ],
        score=score,
        reason="similar name",
        priority=int(score * 100),
    )
    if age_days:
        ReviewTask.objects.filter(pk=task.pk).update(created_at=timezone.now() - dt.timedelta(days=age_days))
    return task


def queue_ids(filters: QueueFilters | None = None, user=None, domains=("customer", "resource")) -> list[int]:
    return list(
        review_queue(filters=filters or QueueFilters(), user=user, domains=domains).values_list("id", flat=True)
    )


def test_queue_orders_by_score_band_then_business_weight_then_age():
    plain_old = task_for(CustomerFactory(), CustomerFactory(), score=0.81, age_days=5)
    with_contracts = task_for(CustomerFactory(), CustomerFactory(), score=0.75)
    candidate_has_contracts = task_for(CustomerFactory(), busy := CustomerFactory(), score=0.72)
    strong = task_for(CustomerFactory(), CustomerFactory(), score=0.95)
    weak_but_busy = task_for(CustomerFactory(), CustomerFactory(), score=0.4)
    ContractFactory.create_batch(3, customer=Customer.objects.get(pk=with_contracts.golden_id))
    ContractFactory.create_batch(2, customer=busy)
    ContractFactory(customer=busy, end_date=dt.date(2000, 1, 1))  # ended: not an open contract
    ContractFactory.create_batch(9, customer=Customer.objects.get(pk=weak_but_busy.golden_id))

    assert queue_ids() == [strong.pk, with_contracts.pk, candidate_has_contracts.pk, plain_old.pk, weak_but_busy.pk]
    rows = {
        r.task.pk: r
        for r in review_queue_rows(list(review_queue(filters=QueueFilters(), user=None, domains=["customer"])))
    }
    assert rows[with_contracts.pk].weight_label == "3 open contracts"
    assert rows[candidate_has_contracts.pk].weight_label == "2 open contracts"
    assert rows[strong.pk].band_label == "very likely (≥ 0.90)"


def test_queue_filters_by_domain_band_system_age_status_and_assignee():
    stella = steward_of("stella", "customer")
    crm_task = task_for(CustomerFactory(), CustomerFactory(), score=0.95, system="crm")
    erp_old = task_for(CustomerFactory(), CustomerFactory(), score=0.8, system="erp", age_days=10)
    person = task_for(ResourceFactory(), ResourceFactory(), domain="resource", score=0.6)
    review_tasks_assign(task_ids=[erp_old.pk], assignee=stella, user=stella)
    deferred = task_for(CustomerFactory(), CustomerFactory())
    deferred.status = "deferred"
    deferred.save()

    def ids(**params):
        return set(queue_ids(review_queue_filters_parse(params), user=stella))

    assert ids() == {crm_task.pk, erp_old.pk, person.pk, deferred.pk}
    assert ids(domain="resource") == {person.pk}
    assert ids(band="3") == {crm_task.pk}
    assert ids(system="erp") == {erp_old.pk}
    assert ids(age="30d") == {erp_old.pk}
    assert ids(assignee="me") == {erp_old.pk}
    assert ids(assignee="none") == {crm_task.pk, person.pk, deferred.pk}
    assert ids(status="deferred") == {deferred.pk}
    assert set(queue_ids(QueueFilters(), user=stella, domains=["customer"])) == {crm_task.pk, erp_old.pk, deferred.pk}
    assert review_queue_counts(domains=["customer", "resource"]) == {
        "customer": {"open": 2, "deferred": 1, "pending": 3},
        "resource": {"open": 1, "deferred": 0, "pending": 1},
    }
    with pytest.raises(StewardshipError) as exc:
        review_queue_filters_parse({"domain": "planet", "band": "9", "age": "ages"})
    assert set(exc.value.errors) == {"domain", "band", "age"}


def test_bulk_assign_assigns_each_task_audited_and_reports_the_ones_it_could_not():
    stella = steward_of("stella", "customer")
    sam = steward_of("sam", "customer")
    one = task_for(CustomerFactory(), CustomerFactory())
    results = review_tasks_assign(task_ids=[one.pk, 987654], assignee=sam, user=stella)
    assert results == [
        {"task": one.pk, "assigned": True},
        {"task": 987654, "assigned": False, "errors": {"task": ["no review task 987654"]}},
    ]
    one.refresh_from_db()
    assert one.assignee == sam
    last = one.history.first()
    assert (last.history_actor, last.history_channel, last.history_change_reason) == (
        "stella",
        "steward",
        "assigned to sam",
    )


def acme_pair():
    ingest("crm", "customer", record("C1", 0, name="Acme", website="https://acme.example.com", city="Berlin"))
    ingest("erp", "customer", record("E1", 5, name="ACME", website="https://acme-erp.example.com", city="Bonn"))
    return ReviewTask.objects.get()


def test_compare_puts_records_in_columns_marks_differences_and_previews_a_chosen_value(review_matcher):
    task = acme_pair()
    compare = review_compare(task=task)
    review, candidate = compare.columns
    assert review.is_review and review.golden_id == task.golden_id and not candidate.is_review
    assert [s.source_id for s in review.sources] == ["E1"] and candidate.selected
    rows = {r.name: r for r in compare.rows}
    city = rows["city"]
    assert city.differs
    assert [(c.display, c.state, c.system) for c in city.cells] == [
        ("Bonn", "review", "erp"),
        ("Berlin", "differs", "crm"),
    ]
    assert city.cells[0].at == dt.datetime(2024, 1, 1, 5, tzinfo=dt.UTC)  # the value's age comes from its source
    assert rows["name"].cells[1].state == "case"  # ACME / Acme: only the case differs
    assert rows["name"].cells[1].similarity["level"] == "exact"
    # survivorship over both records, unless a value is chosen
    assert compare.survivor_id == candidate.golden_id  # the oldest record keeps its id
    assert city.preview == "Berlin" or city.preview == "Bonn"
    chosen = review_compare(task=task, choices={"city": str(task.golden_id)})
    assert {r.name: r for r in chosen.rows}["city"].preview == "Bonn"
    assert {r.name: r for r in chosen.rows}["city"].preview_origin == "chosen: ACME"
    assert [e["score"] for e in compare.explanations] == [0.8]


def test_golden_record_page_shows_sources_provenance_history_diffs_overrides_and_related(review_matcher, steward):
    task = acme_pair()
    decision = review_task_merge(task_id=task.pk, reason="same client", user=steward, field_choices={"city": "Bonn"})
    ingest("crm", "contract", record("K1", 0, contract_number="K-1", title="Rollout", customer="C1"))
    page = golden_record_page(domain="customer", golden_id=decision.survivor_id)

    assert sorted(s["sr"].source_id for s in page.sources) == ["C1", "E1"]
    fields = {f.name: f for f in page.fields}
    assert fields["city"].display == "Bonn" and fields["city"].override.reason == "same client"
    assert fields["name"].provenance["system"] == "crm" and fields["name"].provenance["rule"] == "owner"
    assert {(v["system"], v["display"], v["wins"]) for v in fields["website"].source_values} == {
        ("crm", "https://acme.example.com", True),
        ("erp", "https://acme-erp.example.com", False),
    }
    newest = page.history[0]
    assert (newest.actor, newest.channel, newest.reason) == ("stella", "steward", "same client")
    assert ("city", "Berlin", "Bonn") in [c for h in page.history for c in h.changes]
    assert page.history[-1].kind == "created"
    (contracts,) = page.related
    assert contracts.domain == "contract" and contracts.rows[0][1] == "K-1 Rollout"
    assert page.merges[0].pk == decision.pk and len(page.merged_from) == 1
    assert golden_record_page(domain="customer", golden_id=uuid.uuid4()) is None


def test_exception_actions_resolve_ignore_and_retry_each_row_with_history(steward):
    bad = DataExceptionFactory(message="bad country")
    other = DataExceptionFactory(message="bad currency")
    with pytest.raises(StewardshipError) as exc:
        data_exceptions_act(action="ignore", exception_ids=[bad.pk], reason=" ", user=steward)
    assert exc.value.errors == {"reason": ["a reason is required for ignoring an exception"]}

    results = data_exceptions_act(action="ignore", exception_ids=[bad.pk], reason="test data", user=steward)
    assert results == [{"exception": bad.pk, "ok": True, "status": "ignored"}]
    retried = data_exceptions_act(action="retry", exception_ids=[other.pk, bad.pk], user=steward)
    assert retried[0]["ok"] is False and "no source record" in retried[0]["errors"]["exception"][0]
    assert retried[1] == {
        "exception": bad.pk,
        "ok": False,
        "errors": {"status": [f"exception {bad.pk} is already ignored"]},
    }
    data_exceptions_act(action="resolve", exception_ids=[other.pk], reason="fixed in ERP", user=steward)
    other.refresh_from_db()
    assert (other.status, other.resolution_note) == ("resolved", "fixed in ERP")
    last = other.history.first()
    assert (last.history_actor, last.history_channel, last.history_change_reason) == (
        "stella",
        "steward",
        "fixed in ERP",
    )


def test_dashboard_counts_backlog_trend_decisions_and_the_auto_merge_rate(review_matcher, steward):
    # two records linked by the matcher alone (same website), one pair sent to a steward
    ingest("crm", "customer", record("I1", 0, name="Initech", website="https://initech.example.com"))
    ingest("erp", "customer", record("I2", 0, name="Initech Corp", website="https://initech.example.com"))
    task = acme_pair()
    DataExceptionFactory()
    stats = dashboard_stats(days=7, domains=["customer", "resource"])
    assert stats.review_backlog == {"customer": 1, "resource": 0}
    assert stats.exception_backlog["data_quality"] == 1
    assert stats.review_trend[-1] == 1 and stats.review_trend[0] == 0
    assert (stats.auto_links[-1], stats.reviews_opened[-1]) == (1, 1)
    assert stats.auto_merge_rate[-1] == 0.5 and stats.auto_merge_rate[0] is None

    review_task_not_a_match(task_id=task.pk, reason="different companies", user=steward)
    field_override_set(
        domain="customer", golden_id=task.golden_id, field="segment", value="SMB", reason="from sales", user=steward
    )
    after = dashboard_stats(days=7, domains=["customer"])
    assert after.review_backlog == {"customer": 0} and after.review_trend[-1] == 0
    assert after.decisions["not a match"][-1] == 1 and after.decisions["overrides"][-1] == 1
    assert after.decisions["merged"][-1] == 0
    golden_record_unmerge(
        domain="customer",
        source_record_id=SourceRecord.objects.get(source_id="I2").pk,
        reason="two companies",
        user=steward,
    )
    assert dashboard_stats(days=7, domains=["customer"]).decisions["unmerged"][-1] == 1


def test_role_groups_exist_with_view_permissions_and_decide_only_their_domain():
    names = set(Group.objects.values_list("name", flat=True))
    assert {"Customer stewards", "Resource stewards", "Auditors", "MDM administrators"} <= names
    stewards = Group.objects.get(name="Customer stewards")
    codenames = set(stewards.permissions.values_list("codename", flat=True))
    assert {"view_customer", "view_reviewtask", "view_dataexception"} <= codenames
    assert "change_ownershiprule" not in codenames
    admins = set(Group.objects.get(name="MDM administrators").permissions.values_list("codename", flat=True))
    assert {"change_ownershiprule", "add_ownershiprule", "change_system"} <= admins
    roles.roles_sync()  # idempotent
    assert Group.objects.filter(name="Auditors").count() == 1

    stella = steward_of("stella", "customer")
    auditor = steward_of("audrey")
    auditor.groups.add(Group.objects.get(name="Auditors"))
    boss = get_user_model().objects.create_superuser("boss", "b@example.com", "pw")
    assert roles.can_decide(stella, "customer") and not roles.can_decide(stella, "resource")
    assert roles.can_view(stella, "customer") and not roles.can_view(stella, "resource")
    assert roles.can_view(auditor, "resource") and not roles.can_decide(auditor, "resource")
    assert roles.can_decide(boss, "resource") and roles.is_administrator(boss)
    assert roles.can_decide(stella, "")  # an exception of no domain (a dead letter): any steward
    assert "Resource stewards" in roles.decide_refusal(stella, "resource")
