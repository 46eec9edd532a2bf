"""The workbench pages through the Django test client: roles (403), decisions audited, no N+1, bad input 4xx."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from canonical.models import Customer, DataException, FieldOverride, OwnershipRule, SourceRecord
from stewardship.models import MergeDecision, ReviewTask
from tests.factories import CustomerFactory, DataExceptionFactory, ResourceFactory, SourceRecordFactory, ingest, record

from .test_workbench import steward_of, task_for

pytestmark = pytest.mark.django_db


def url(name: str, *args) -> str:
    return reverse(f"admin:{name}", args=args)


@pytest.fixture
def stella(client):
    user = steward_of("stella", "customer")
    client.force_login(user)
    return user


@pytest.fixture
def acme(review_matcher):
    ingest("crm", "customer", record("C1", 0, name="Acme", website="https://acme.example.com", city="Berlin"))
    ingest("erp", "customer", record("E1", 5, name="ACME", website="https://acme-erp.example.com", city="Bonn"))
    return ReviewTask.objects.get()


def test_merge_from_the_compare_page_keeps_the_chosen_value_and_is_audited(client, stella, acme):
    page = client.get(url("workbench_compare", acme.pk))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Merged record (preview)" in html and 'name="choice__city"' in html

    response = client.post(
        url("workbench_decide", acme.pk),
        {
            "action": "merge",
            "reason": "same client",
            "candidates": acme.candidate_ids,
            "choice__city": str(acme.golden_id),
        },
    )
    assert response.status_code == 302
    decision = MergeDecision.objects.get()
    assert (decision.actor, decision.channel, decision.reason) == ("stella", "steward", "same client")
    survivor = Customer.objects.get(pk=decision.survivor_id)
    assert survivor.city == "Bonn"
    override = FieldOverride.objects.get(golden_id=survivor.pk, field="city")
    assert override.history.first().history_actor == "stella"
    acme.refresh_from_db()
    assert (acme.status, acme.decided_by) == ("merged", "stella")


def test_a_decision_without_a_reason_is_refused_with_a_message_and_writes_nothing(client, stella, acme):
    response = client.post(url("workbench_decide", acme.pk), {"action": "merge", "reason": "  "}, follow=True)
    assert response.status_code == 200
    assert "Reason: a reason is required for a merge" in response.content.decode()
    assert not MergeDecision.objects.exists()
    assert ReviewTask.objects.get().status == "open"


def test_not_a_match_and_defer_from_the_compare_page(client, stella, acme):
    client.post(url("workbench_decide", acme.pk), {"action": "defer", "reason": "ask sales"})
    acme.refresh_from_db()
    assert (acme.status, acme.note) == ("deferred", "ask sales")
    client.post(url("workbench_decide", acme.pk), {"action": "not_a_match", "reason": "two companies"})
    acme.refresh_from_db()
    assert acme.status == "not_a_match"
    assert acme.history.first().history_change_reason == "two companies"


def test_a_steward_of_another_domain_gets_403_and_nothing_changes(client, acme):
    rex = steward_of("rex", "resource")
    client.force_login(rex)
    assert client.get(url("workbench_compare", acme.pk)).status_code == 403
    refused = client.post(url("workbench_decide", acme.pk), {"action": "merge", "reason": "mine now"})
    assert refused.status_code == 403
    assert "Customer stewards" in refused.content.decode()
    bulk = client.post(url("workbench_reviews_bulk"), {"action": "accept", "tasks": [acme.pk], "reason": "x"})
    assert bulk.status_code == 403
    assert client.get(url("workbench_reviews"), {"domain": "customer"}).status_code == 403
    golden = client.get(url("workbench_golden", "customer", acme.golden_id))
    assert golden.status_code == 403
    override = client.post(
        url("workbench_override", "customer", acme.golden_id), {"field": "city", "value": "Köln", "reason": "x"}
    )
    assert override.status_code == 403
    assert not MergeDecision.objects.exists() and not FieldOverride.objects.exists()
    assert ReviewTask.objects.get().status == "open"
    # rex's own queue does not list the customer task
    assert "Acme" not in client.get(url("workbench_reviews")).content.decode()


def test_an_auditor_sees_every_queue_read_only(client, acme):
    audrey = steward_of("audrey")
    audrey.groups.add(Group.objects.get(name="Auditors"))
    client.force_login(audrey)
    assert "ACME" in client.get(url("workbench_reviews")).content.decode()
    page = client.get(url("workbench_compare", acme.pk)).content.decode()
    assert "Read-only" in page and 'value="merge"' not in page
    assert client.get(url("workbench_golden", "customer", acme.golden_id)).status_code == 200
    assert client.post(url("workbench_decide", acme.pk), {"action": "defer", "reason": "x"}).status_code == 403
    assert client.get(url("workbench_exceptions")).status_code == 200


def test_staff_without_a_role_is_refused_the_workbench(client):
    client.force_login(get_user_model().objects.create_user("temp", password="pw", is_staff=True))
    response = client.get(url("workbench_reviews"))
    assert response.status_code == 403 and "steward group" in response.content.decode()
    assert client.get(url("index")).status_code == 200  # the admin index still opens, without a dashboard


def test_unmerge_and_override_from_the_golden_record_page(client, stella, acme):
    client.post(url("workbench_decide", acme.pk), {"action": "merge", "reason": "same client"})
    survivor = MergeDecision.objects.get().survivor_id
    page = client.get(url("workbench_golden", "customer", survivor))
    assert page.status_code == 200 and "Unmerge" in page.content.decode()

    no_reason = client.post(
        url("workbench_override", "customer", survivor), {"field": "segment", "value": "Key account", "reason": ""}
    )
    assert no_reason.status_code == 302 and not FieldOverride.objects.filter(field="segment").exists()
    client.post(
        url("workbench_override", "customer", survivor),
        {"field": "segment", "value": "Key account", "reason": "QBR"},
    )
    assert Customer.objects.get(pk=survivor).segment == "Key account"
    client.post(
        url("workbench_override", "customer", survivor), {"field": "segment", "action": "clear", "reason": "ok"}
    )
    assert Customer.objects.get(pk=survivor).segment is None

    erp = SourceRecord.objects.get(source_id="E1")
    client.post(url("workbench_unmerge", "customer", survivor), {"source_record": erp.pk, "reason": "subsidiary"})
    erp.refresh_from_db()
    assert erp.golden_id != survivor
    last = Customer.history.filter(id=survivor).first()
    assert (last.history_actor, last.history_channel, last.history_change_reason) == ("stella", "steward", "subsidiary")
    # a merged record's page leads to its survivor
    retired = MergeDecision.objects.get().retired_ids[0]
    client.post(url("workbench_decide", acme.pk), {})  # a decided task: refused with a message, no 500
    assert client.get(url("workbench_golden", "customer", retired)).status_code in (200, 302)


def test_exception_queue_actions_from_the_page(client, stella):
    bad = DataExceptionFactory(message="country 'XX' is not a country")
    elsewhere = DataExceptionFactory(domain="resource", message="resource problem")
    page = client.get(url("workbench_exceptions")).content.decode()
    assert "country &#x27;XX&#x27; is not a country" in page and "resource problem" not in page

    client.post(url("workbench_exceptions_act"), {"do": f"ignore:{bad.pk}", "reason": ""})
    bad.refresh_from_db()
    assert bad.status == "open"  # ignoring needs a reason
    client.post(url("workbench_exceptions_act"), {"do": "assign_me", "exceptions": [bad.pk]})
    client.post(url("workbench_exceptions_act"), {"do": f"resolve:{bad.pk}", "reason": "fixed in ERP"})
    bad.refresh_from_db()
    assert (bad.status, bad.assignee, bad.resolution_note) == ("resolved", stella, "fixed in ERP")
    refused = client.post(url("workbench_exceptions_act"), {"do": f"resolve:{elsewhere.pk}", "reason": "x"})
    assert refused.status_code == 403
    assert DataException.objects.get(pk=elsewhere.pk).status == "open"


@pytest.mark.parametrize(
    "path",
    [
        "/admin/workbench/reviews/?band=17",
        "/admin/workbench/reviews/?domain=planets",
        "/admin/workbench/reviews/?page=999999",
        "/admin/workbench/reviews/next/?after=abc",
        "/admin/workbench/reviews/424242/",
        "/admin/workbench/reviews/1/?candidates=nope&survivor=%00&choice__city=x",
        "/admin/workbench/golden/customer/not-a-uuid/",
        "/admin/workbench/golden/planet/00000000-0000-0000-0000-000000000000/",
        f"/admin/workbench/golden/customer/{uuid.UUID(int=1)}/",
        "/admin/workbench/exceptions/?status=whatever&age=x",
    ],
)
def test_garbage_in_the_url_is_a_4xx_never_a_500(client, stella, path):
    task_for(CustomerFactory(), CustomerFactory())
    assert client.get(path).status_code in (200, 302, 400, 404)


def test_garbage_posts_are_refused_with_messages(client, stella):
    task = task_for(CustomerFactory(), CustomerFactory())
    for data in (
        {"action": "explode", "reason": "x"},
        {"action": "merge", "reason": "x", "candidates": ["not-a-uuid"], "survivor": "zzz", "choice__nope": "1"},
        {"action": "assign", "assignee": "nobody-like-this"},
    ):
        assert client.post(url("workbench_decide", task.pk), data).status_code in (302, 400)
    assert client.post(url("workbench_reviews_bulk"), {"action": "assign_me", "tasks": ["x"]}).status_code == 302
    assert client.get(url("workbench_decide", task.pk)).status_code == 405
    assert client.post(url("workbench_unmerge", "customer", task.golden_id), {"source_record": "x"}).status_code == 302
    assert client.post(url("workbench_override", "customer", task.golden_id), {"field": "nope"}).status_code == 302
    assert client.post(url("workbench_exceptions_act"), {"do": "retry:abc"}).status_code == 302


def test_the_admin_index_is_a_dashboard_with_charts(client, stella, acme):
    page = client.get(url("index")).content.decode()
    assert page.count('<svg class="wb-chart"') == 4
    assert "review tasks waiting" in page and "auto-merge rate" in page


def test_the_administrators_group_edits_ownership_rules_and_stewards_do_not(client, stella):
    rule = OwnershipRule.objects.first()
    change = url("canonical_ownershiprule_change", rule.pk)
    assert client.post(change, {}).status_code == 403
    admin_user = steward_of("ada")
    admin_user.groups.add(Group.objects.get(name="MDM administrators"))
    client.force_login(admin_user)
    assert client.get(change).status_code == 200
    assert "change_reason" in client.get(change).content.decode()


def _many_tasks(n: int) -> None:
    for _ in range(n):
        a, b = CustomerFactory(), CustomerFactory()
        SourceRecordFactory(golden_id=a.pk)
        task_for(a, b)
    for _ in range(max(1, n // 10)):
        task_for(ResourceFactory(), ResourceFactory(), domain="resource")


def _queries(client, path: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    return len(ctx.captured_queries)


def test_queue_and_compare_pages_make_the_same_number_of_queries_whatever_the_number_of_tasks(client):
    boss = get_user_model().objects.create_superuser("boss", "b@example.com", "pw")
    client.force_login(boss)
    _many_tasks(3)
    DataExceptionFactory()
    first = ReviewTask.objects.filter(domain="customer").order_by("pk").first()
    small = {
        "queue": _queries(client, url("workbench_reviews")),
        "customers": _queries(client, url("workbench_reviews") + "?domain=customer"),
        "compare": _queries(client, url("workbench_compare", first.pk)),
        "exceptions": _queries(client, url("workbench_exceptions")),
    }
    _many_tasks(60)
    DataExceptionFactory.create_batch(30)
    large = {
        "queue": _queries(client, url("workbench_reviews")),
        "customers": _queries(client, url("workbench_reviews") + "?domain=customer"),
        "compare": _queries(client, url("workbench_compare", first.pk)),
        "exceptions": _queries(client, url("workbench_exceptions")),
    }
    assert large == small
    assert small["queue"] <= 20 and small["compare"] <= 25
    # more candidates on one task do not mean more queries either
    many = task_for(CustomerFactory(), CustomerFactory())
    many.candidates = many.candidates + [
        {**many.candidates[0], "golden_id": str(CustomerFactory().pk)} for _ in range(4)
    ]
    many.save()
    assert _queries(client, url("workbench_compare", many.pk)) == small["compare"]


def test_the_golden_record_admin_page_links_to_the_workbench_page(client, stella, acme):
    page = client.get(url("canonical_customer_change", acme.golden_id)).content.decode()
    assert url("workbench_golden", "customer", acme.golden_id) in page


def test_a_nul_in_a_steward_form_or_a_query_string_is_a_400_and_changes_nothing(client, stella):
    # the steward screens read request.POST / request.GET without a form's validators: a NUL reached the database
    bad = DataExceptionFactory(message="country 'XX' is not a country")

    refused = client.post(url("workbench_exceptions_act"), {"do": f"ignore:{bad.pk}", "reason": "checked\x00"})
    assert refused.status_code == 400 and b"holds a NUL character" in refused.content
    bad.refresh_from_db()
    assert (bad.status, bad.resolution_note) == ("open", "")
    for path in ("/admin/workbench/reviews/", "/admin/workbench/exceptions/", "/admin/canonical/sourcerecord/"):
        assert client.get(path, {"system": "a\x00b"}).status_code == 400, path
