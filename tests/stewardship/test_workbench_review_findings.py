"""The workbench and the admin under odd requests, stale pages and other roles (found by a review of the steward
UI): each now refused or answered, never a 500, a leak or a silent overwrite."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from canonical.models import OwnershipRule
from connectors.models import DeadLetter
from stewardship.models import MergeDecision
from stewardship.services.merge import golden_record_merge
from tests.factories import CustomerFactory, DataExceptionFactory, RateCardFactory, ResourceFactory, SystemFactory

from .test_workbench import steward_of, task_for

pytestmark = pytest.mark.django_db


def url(name, *args):
    return reverse(f"admin:{name}", args=args)


def test_a_customer_steward_cannot_read_resources_personal_data_in_the_admin_either(client):
    client.force_login(steward_of("stella", "customer"))
    res = ResourceFactory(national_id="NAT-123-SECRET")
    assert client.get(url("workbench_golden", "resource", res.pk)).status_code == 403  # workbench refuses...
    page = client.get(url("canonical_resource_change", res.pk))  # ...the admin shows it
    assert page.status_code == 403 and "NAT-123-SECRET" not in page.content.decode()
    from tests.factories import ingest, record

    ingest(
        "hr",
        "resource",
        record("EMP-7731", 0, first_name="Kim", last_name="Doe", email="kim@example.com", employee_number="7731"),
    )
    ingest("crm", "customer", record("ACC-5512", 0, name="Acme"))
    listing = client.get(url("canonical_sourcerecord_changelist")).content.decode()
    assert "ACC-5512" in listing and "EMP-7731" not in listing


def test_merge_on_a_stale_task_does_not_merge_a_record_the_page_never_showed(client):
    stella = steward_of("stella", "customer")
    client.force_login(stella)
    t, c, x = CustomerFactory(name="Acme"), CustomerFactory(name="ACME Corp"), CustomerFactory(name="Zeta Holdings")
    task = task_for(t, c)
    golden_record_merge(domain="customer", survivor_id=x.pk, other_ids=[c.pk], reason="other merge", user=stella)
    page = client.get(url("workbench_compare", task.pk)).content.decode()
    assert "merged into another record since" in page and f'name="candidates" value="{c.pk}"' not in page
    client.post(url("workbench_decide", task.pk), {"action": "merge", "reason": "same"})  # no candidate box to tick
    task.refresh_from_db()
    assert task.status == "open"
    assert MergeDecision.objects.count() == 1  # the other merge only


def test_an_assignment_racing_a_merge_does_not_reopen_the_merged_task(client, monkeypatch):
    import stewardship.services.reviews as rv

    stella, sam = steward_of("stella", "customer"), steward_of("sam", "customer")
    task = task_for(CustomerFactory(), CustomerFactory())
    orig, raced = rv._task_for_decision, []

    def stale_read(task_id):  # stella's request reads the open task; sam's merge commits before her save
        t = orig(task_id)
        if not raced:
            raced.append(1)
            rv.review_task_merge(task_id=task_id, reason="same client", user=sam)
        return t

    monkeypatch.setattr(rv, "_task_for_decision", stale_read)
    client.force_login(stella)
    client.post(url("workbench_decide", task.pk), {"action": "assign_me"})
    task.refresh_from_db()
    assert MergeDecision.objects.count() == 1
    assert task.status == "merged" and task.decided_by == "sam" and task.decided_at is not None


def test_next_without_after_is_answered():
    c = Client(raise_request_exception=False)
    c.force_login(steward_of("stella", "customer"))
    assert c.get("/admin/workbench/reviews/next/").status_code in (200, 302)


def test_pinning_deeply_nested_rate_card_lines_is_refused_not_a_500():
    c = Client(raise_request_exception=False)
    c.force_login(steward_of("rita", "rate_card"))
    rc = RateCardFactory()
    r = c.post(url("workbench_override", "rate_card", rc.pk), {"field": "lines", "value": "[" * 100000, "reason": "x"})
    assert r.status_code < 500


def test_retry_on_a_dead_letter_exception_replays_the_push(client):
    client.force_login(steward_of("stella", "customer"))
    cust = CustomerFactory()
    exc = DataExceptionFactory(
        kind="dead_letter", domain="customer", golden_id=cust.pk, source_record=None, message="push failed"
    )
    letter = DeadLetter.objects.create(
        system=exc.system or SystemFactory(), domain="customer", golden_id=cust.pk, error="boom", exception=exc
    )

    client.post(url("workbench_exceptions_act"), {"do": "retry", "exceptions": [exc.pk], "reason": "fixed in ERP"})

    letter.refresh_from_db()
    exc.refresh_from_db()
    assert letter.replayed_at is not None
    assert exc.status == "resolved" and exc.resolution_note == "fixed in ERP"


def test_deleting_an_ownership_rule_in_the_admin_needs_a_reason_kept_in_the_history(client):
    ada = steward_of("ada")
    ada.groups.add(Group.objects.get(name="MDM administrators"))
    client.force_login(ada)
    rule = OwnershipRule.objects.first()
    page = client.get(url("canonical_ownershiprule_delete", rule.pk)).content.decode()
    assert 'name="change_reason"' in page

    client.post(url("canonical_ownershiprule_delete", rule.pk), {"post": "yes"})
    assert OwnershipRule.objects.filter(pk=rule.pk).exists()  # refused: no reason

    client.post(url("canonical_ownershiprule_delete", rule.pk), {"post": "yes", "change_reason": "ERP retired"})
    assert not OwnershipRule.objects.filter(pk=rule.pk).exists()
    last = OwnershipRule.history.filter(id=rule.pk).first()
    assert (last.history_type, last.history_actor, last.history_change_reason) == ("-", "ada", "ERP retired")


@pytest.mark.parametrize("path", [
    "/admin/canonical/customer/not-a-uuid/history/",
    "/admin/stewardship/reviewtask/abc/history/",
    "/admin/canonical/system/cr%00m/history/",
])  # fmt: skip
def test_an_admin_history_page_for_an_id_that_cannot_be_one_is_a_404(path):
    c = Client(raise_request_exception=False)
    aud = steward_of("audrey")
    aud.groups.add(Group.objects.get(name="Auditors"))
    c.force_login(aud)
    assert c.get(path).status_code == 404
