"""A steward's day in a real browser: log in, work the queue, compare, merge with a chosen value, unmerge,
override a field with a reason, resolve an exception; a steward of another domain is refused.

Every screen is saved to test-artifacts/screenshots/ (look at them: they are the proof the pages are usable).
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from canonical.models import Customer, DataException, FieldOverride, SourceRecord
from stewardship.models import MergeDecision, ReviewTask
from tests.factories import ingest, record

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def workday(settings):
    """Two customer records the matcher was unsure about (with a contract), a resource pair, a bad record."""
    settings.MDM_MATCHER = "tests.stewardship.matchers.NameReviewMatcher"
    ingest(
        "crm",
        "customer",
        record("C1", 0, name="Acme", website="https://acme.example.com", city="Berlin", industry="Software"),
    )
    ingest("erp", "customer", record("E1", 1, name="ACME", website="https://acme-erp.example.com", city="Bonn"))
    ingest("crm", "contract", record("K1", 0, contract_number="K-1", title="Platform rollout", customer="C1"))
    ingest("hr", "resource", record("R1", 0, first_name="Ada", last_name="Lovelace", email="ada@firm.example.com"))
    ingest("psa", "resource", record("P1", 0, first_name="Ada", last_name="Lovelace", email="ada@psa.example.com"))
    ingest("erp", "customer", record("E9", 0, name="Initech", website="https://initech.example.com", country="XX"))
    ingest("crm", "customer", record("C5", 0, name="Globex", website="https://globex.example.com"))
    ingest("erp", "customer", record("E5", 0, name="Globex", website="https://globex-erp.example.com"))
    users = get_user_model().objects
    stella = users.create_user("stella", password="stella-pw-123", is_staff=True)
    stella.groups.add(Group.objects.get(name="Customer stewards"))
    rex = users.create_user("rex", password="rex-pw-123", is_staff=True)
    rex.groups.add(Group.objects.get(name="Resource stewards"))
    return {
        "customer_task": ReviewTask.objects.get(domain="customer", source_record__source_id="E1"),
        "other_customer_task": ReviewTask.objects.get(domain="customer", source_record__source_id="E5"),
        "resource_task": ReviewTask.objects.get(domain="resource"),
    }


def login(page, live_server, username: str, password: str) -> None:
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    expect(page.locator(".wb-dashboard")).to_be_visible()


def test_a_customer_steward_works_the_queue_and_a_resource_steward_is_refused(page, live_server, workday, shot):
    task = workday["customer_task"]
    page.on("dialog", lambda dialog: dialog.accept())

    # log in: the admin index is the dashboard
    login(page, live_server, "stella", "stella-pw-123")
    expect(page.locator(".wb-kpi").first).to_contain_text("review tasks waiting")
    expect(page.locator("svg.wb-chart")).to_have_count(4)
    shot(page, "01-dashboard")

    # the queue: only the customer task (stella stewards customers), with its business weight
    page.click("text=review tasks waiting")
    rows = page.locator("table.wb-queue tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Acme")
    expect(rows.first).to_contain_text("1 open contracts")
    rows.first.locator("input[name=tasks]").check()
    page.click("button:has-text('Assign to me')")
    expect(page.locator(".messagelist")).to_contain_text("1 task(s) assigned to stella")
    expect(page.locator("table.wb-queue tbody tr").first).to_contain_text("stella")
    shot(page, "02-queue")

    # compare: records in columns, the differing city highlighted, with each value's system
    page.keyboard.press("j")
    page.keyboard.press("o")
    expect(page.locator("table.wb-compare")).to_be_visible()
    city = page.locator("tr[data-field=city]")
    expect(city).to_have_class(re.compile("wb-differs"))
    expect(city.locator("td.wb-state-differs")).to_contain_text("Berlin")
    expect(city.locator("td.wb-state-review")).to_contain_text("erp")
    expect(page.locator("tr[data-field=name] .wb-sim").first).to_contain_text("exact")
    # choose the surviving city: the one ERP has (Bonn); the preview follows at once
    city.locator("td.wb-state-review input[type=radio]").check()
    expect(city.locator("[data-preview-value]")).to_have_text("Bonn")
    expect(city.locator("[data-preview-origin]")).to_contain_text("chosen")
    shot(page, "03-compare-with-chosen-value")
    # a decision without a reason is not sent
    page.keyboard.press("m")
    expect(page.locator("[data-wb-hint]")).to_be_visible()
    page.fill("#wb-reason", "same client: ERP account of the CRM company")
    page.click("button[value=merge]")
    expect(page.locator(".messagelist")).to_contain_text("merged 1 record(s) into")
    shot(page, "04-after-merge")

    decision = MergeDecision.objects.get()
    assert (decision.actor, decision.channel, decision.reason) == (
        "stella",
        "steward",
        "same client: ERP account of the CRM company",
    )
    survivor = Customer.objects.get(pk=decision.survivor_id)
    assert survivor.city == "Bonn"
    assert FieldOverride.objects.get(golden_id=survivor.pk, field="city", is_active=True).value == "Bonn"

    # the golden record page: both sources, provenance, history, related contract
    page.click(".messagelist a")
    expect(page.locator("tr[data-source]")).to_have_count(2)
    expect(page.locator("#field-city")).to_contain_text("pinned by stella")
    expect(page.locator(".wb-timeline")).to_contain_text("same client: ERP account of the CRM company")
    expect(page.locator("#related-section")).to_contain_text("K-1 Platform rollout")
    shot(page, "05-golden-record")

    # unmerge the ERP record again, with a reason
    erp_row = page.locator("tr[data-source='erp:E1']")
    erp_row.locator("input[name=reason]").fill("ERP account belongs to the subsidiary")
    erp_row.locator("button:has-text('Unmerge')").click()
    expect(page.locator(".messagelist")).to_contain_text("Split erp:E1 out")
    expect(page.locator("tr[data-source]")).to_have_count(1)
    shot(page, "06-after-unmerge")
    assert SourceRecord.objects.get(source_id="E1").golden_id != survivor.pk

    # override a field with a reason
    segment = page.locator("#field-segment")
    segment.locator("summary").click()
    segment.locator("input[name=value]").fill("Key account")
    segment.locator("input[name=reason]").fill("agreed in the QBR")
    segment.locator("button:has-text('Pin value')").click()
    expect(page.locator(".messagelist")).to_contain_text("Pinned segment: agreed in the QBR")
    expect(page.locator("#field-segment")).to_contain_text("Key account")
    expect(page.locator("#field-segment")).to_contain_text("pinned by stella")
    shot(page, "07-golden-record-overridden")
    history = Customer.history.filter(id=survivor.pk).first()
    assert (history.segment, history.history_actor, history.history_channel, history.history_change_reason) == (
        "Key account",
        "stella",
        "steward",
        "agreed in the QBR",
    )

    # the exception queue: resolve the invalid country with a note
    page.click(".wb-nav >> text=Exception queues")
    exc = DataException.objects.get(source_record__source_id="E9", kind="validation")
    row = page.locator(f"tr[data-exception='{exc.pk}']")
    expect(row).to_contain_text("is not an ISO 3166-1 alpha-2 country code")
    shot(page, "08-exceptions")
    page.fill("#wb-exc-reason", "Initech fixes the country in ERP")
    row.locator("button:has-text('Resolve')").click()
    expect(page.locator(".messagelist")).to_contain_text("1 exception(s) resolved")
    expect(page.locator(f"tr[data-exception='{exc.pk}']")).to_have_count(0)
    shot(page, "09-exception-resolved")
    exc.refresh_from_db()
    assert (exc.status, exc.resolution_note) == ("resolved", "Initech fixes the country in ERP")
    assert exc.history.first().history_actor == "stella"

    # the dashboard now shows the day's decisions
    page.click(".wb-nav >> text=Dashboard")
    expect(page.locator(".wb-kpi").nth(2)).to_contain_text("steward decisions")
    assert int(page.locator(".wb-kpi-n").nth(2).inner_text()) >= 4  # merge, unmerge, 2 pins, 1 exception
    shot(page, "10-dashboard-after-decisions")

    # a resource steward sees only resource tasks, and cannot open or decide a customer task (403)
    page.context.clear_cookies()
    login(page, live_server, "rex", "rex-pw-123")
    page.goto(f"{live_server.url}/admin/workbench/reviews/")
    expect(page.locator("table.wb-queue tbody tr")).to_have_count(1)
    expect(page.locator("table.wb-queue tbody tr").first).to_contain_text("Ada Lovelace")
    globex = workday["other_customer_task"]
    response = page.goto(f"{live_server.url}/admin/workbench/reviews/{globex.pk}/")
    assert response.status == 403
    expect(page.locator(".wb-refused")).to_contain_text("Customer stewards")
    shot(page, "11-other-domain-refused")
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    refused = page.request.post(
        f"{live_server.url}/admin/workbench/reviews/{globex.pk}/decide/",
        form={"action": "merge", "reason": "looks the same to me"},
        headers={"X-CSRFToken": csrf, "Referer": f"{live_server.url}/admin/workbench/reviews/"},
    )
    assert refused.status == 403
    globex.refresh_from_db()
    assert globex.status == "open" and not MergeDecision.objects.filter(review_task=globex).exists()
    task.refresh_from_db()
    assert task.status == "merged"
