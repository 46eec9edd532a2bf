"""End to end, continued: concurrent and out-of-order webhooks, late-committing writers and the change
feed, signed outbound webhooks, and the lead-to-project flow across CRM, ERP and PSA."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import connection, transaction

from canonical.audit import Channel, audit_context
from canonical.models import ChangeEvent, Contract, CrossReference, Customer, Project, SourceRecord, System
from connectors.models import DealCycle, Delivery, DeliveryStatus, InboundWebhook
from connectors.services.connections import connection_configure
from connectors.webhooks.client import signed_headers

from .conftest import assert_delivered_once, ingest, rec, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
SECRET = "shop-secret"


@pytest.fixture
def shop(transactional_db):
    with audit_context(actor="pytest", channel=Channel.JOB, reason="test"):
        System.objects.create(code="shop", name="Web shop", kind="webhook")
        connection_configure(system="shop", kind="webhook", base_url="http://127.0.0.1:9/unused", secret=SECRET)


def send(url: str, body: dict, msg_id: str) -> requests.Response:
    raw = json.dumps(body).encode()
    return requests.post(f"{url}/api/v1/webhooks/shop/", data=raw, headers=signed_headers(SECRET, msg_id, raw),
                         timeout=30)  # fmt: skip


def customer_body(name: str, updated_at: str) -> dict:
    return {"domain": "customer", "records": [{"source_id": "S-1", "updated_at": updated_at,
                                               "attributes": {"name": name, "website": "https://acme.example"}}]}  # fmt: skip


def test_the_same_webhook_three_times_concurrently_is_ingested_and_pushed_once(
    live_server, shop, sandbox, connect, workers
):
    connect(sandbox, "erp")
    workers(beat=True)
    body = customer_body("Acme", "2026-01-01T00:00:00Z")
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: send(live_server.url, body, "evt-1"), range(3)))
    assert sorted(a.status_code for a in answers) == [200, 200, 202]
    wait_for(lambda: InboundWebhook.objects.filter(status="done").exists(), timeout=30, what="the ingest")
    wait_for(lambda: Delivery.objects.filter(status=DeliveryStatus.DONE).exists(), timeout=30, what="the push")
    assert InboundWebhook.objects.count() == 1
    assert SourceRecord.objects.count() == 1 and Customer.objects.count() == 1 and ChangeEvent.objects.count() == 1
    assert_delivered_once(sandbox, system="erp", obj="customer", domain="customer",
                          golden_ids=Customer.objects.values_list("pk", flat=True))  # fmt: skip


def test_updates_arriving_out_of_order_end_with_the_newest_everywhere(live_server, shop, sandbox, connect, workers):
    connect(sandbox, "erp")
    workers(beat=True)
    versions = [("Acme v3", "2026-01-03T00:00:00Z"), ("Acme v1", "2026-01-01T00:00:00Z"),
                ("Acme v2", "2026-01-02T00:00:00Z")]  # fmt: skip
    for n, (name, when) in enumerate(versions):
        assert send(live_server.url, customer_body(name, when), f"evt-{n}").status_code == 202
    wait_for(lambda: InboundWebhook.objects.filter(status="done").count() == 3, timeout=30, what="three ingests")
    golden = Customer.objects.get()
    assert golden.name == "Acme v3"
    outcomes = sorted(o for h in InboundWebhook.objects.all() for o in [h.results[0]["outcome"]])
    assert outcomes == ["created", "stale", "stale"]
    wait_for(lambda: not Delivery.objects.exclude(status=DeliveryStatus.DONE).exists(), timeout=30, what="pushes")
    assert_delivered_once(sandbox, system="erp", obj="customer", domain="customer", golden_ids=[golden.pk])
    assert sandbox.records("erp", "customer")[0]["data"]["companyName"] == "Acme v3"


def test_two_writers_where_the_first_commits_late_and_the_feed_skips_nothing(transactional_db, workers):
    from rest_framework.test import APIClient

    from canonical.api.clients import api_client_create

    workers()  # a worker is running, as in production; the feed itself is read over the API
    _, key = api_client_create(name="downstream", scopes=["read:customer"])
    reader = APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    ingest("crm", "customer", rec("001-seed", name="Seed"))
    first_wrote, let_first_commit = threading.Event(), threading.Event()

    # The slow writer is a steward: two ingests no longer overlap (the match locks, canonical/services/ingest.py,
    # have the second wait for the first to commit), but a steward's decision takes none and commits in any order.
    from stewardship.services.overrides import field_override_set

    seed = Customer.objects.get()

    def slow_writer():
        try:
            with transaction.atomic():
                field_override_set(
                    domain="customer", golden_id=seed.pk, field="name", value="Written first, committed last",
                    reason="a steward's correction",
                )  # fmt: skip
                first_wrote.set()
                let_first_commit.wait(30)
        finally:
            connection.close()

    seen: list[dict] = []
    after = ""

    def read() -> None:
        nonlocal after
        while True:
            page = reader.get("/api/v1/changes", {"after": after, "limit": 100}).json()
            seen.extend(page["events"])
            after = page["next_cursor"]
            if not page["has_more"]:
                return

    read()
    writer = threading.Thread(target=slow_writer)
    writer.start()
    assert first_wrote.wait(30)
    ingest("crm", "customer", rec("001-fast", name="Written second, committed first"))
    read()  # the second writer's event is committed, but the first writer is still open
    names = [e["data"]["record"]["name"] for e in seen]
    assert names == ["Seed"], "nothing after the open transaction is served yet"
    let_first_commit.set()
    writer.join(30)
    read()
    names = [e["data"]["record"]["name"] for e in seen]
    assert sorted(names) == sorted(["Seed", "Written first, committed last", "Written second, committed first"])
    assert [e["type"] for e in seen if e["data"]["record"]["name"] == "Written first, committed last"] == [
        "org.mdm.golden.updated"
    ]
    assert len({e["id"] for e in seen}) == ChangeEvent.objects.count() == 3
    late_id = ChangeEvent.objects.get(data__name="Written first, committed last").pk
    fast_id = ChangeEvent.objects.get(data__name="Written second, committed first").pk
    assert late_id < fast_id, "by id alone a reader would have skipped the late event"


def test_outbound_webhooks_are_signed_and_each_event_arrives_once_in_order(sandbox, workers):
    with audit_context(actor="pytest", channel=Channel.JOB, reason="test"):
        System.objects.create(code="warehouse", name="Data warehouse", kind="webhook", subscribed_domains=["customer"])
        connection_configure(system="warehouse", kind="webhook", base_url=f"{sandbox.url}/hooks/warehouse",
                             secret="wh-secret")  # fmt: skip
    sandbox.admin("POST", "hooks", json={"name": "warehouse", "secret": "wh-secret"})
    sandbox.faults("hooks", fail_next=2, fail_status=502)
    workers(beat=True)
    for n, name in enumerate(["Acme", "Acme Corp", "Acme Corporation"]):
        ingest("crm", "customer", rec("001A", n * 10, name=name))
    wait_for(lambda: Delivery.objects.filter(status=DeliveryStatus.DONE).count() == 3, timeout=60, what="3 hooks")
    hooks = [h for h in sandbox.admin("GET", "hooks", params={"name": "warehouse"}) if h["valid"]]
    assert [h["body"]["data"]["version"] for h in hooks] == [1, 2, 3]
    assert [h["body"]["data"]["record"]["name"] for h in hooks] == ["Acme", "Acme Corp", "Acme Corporation"]
    assert {h["body"]["type"] for h in hooks} == {"org.mdm.golden.created", "org.mdm.golden.updated"}
    assert len({h["headers"]["webhook-id"] for h in hooks}) == 3


def test_lead_to_project_closed_won_deal_becomes_erp_contract_and_psa_project(sandbox, connect, workers):
    connect(sandbox, "crm", "erp", "psa")
    workers(beat=True, extra_env={"MDM_PULL_INTERVAL": "1"})
    base = f"{sandbox.url}/crm/services/data/v60.0/sobjects"
    account = requests.post(f"{base}/Account", json={"Name": "Northwind Ltd", "Website": "https://northwind.example",
                                                     "Industry": "Consulting"}, timeout=5).json()["id"]  # fmt: skip
    opportunity = requests.post(f"{base}/Opportunity", timeout=5, json={
        "Name": "Northwind: data platform", "AccountId": account, "StageName": "Closed Won", "Amount": 250000,
        "CurrencyIsoCode": "EUR", "CloseDate": "2026-03-01", "Start_Date__c": "2026-04-01",
        "End_Date__c": "2026-12-31", "Contract_Type__c": "fixed_fee"}).json()["id"]  # fmt: skip
    cycle = wait_for(lambda: DealCycle.objects.filter(opportunity_id=opportunity, project_created_at__isnull=False)
                     .first(), timeout=90, what="the deal's project")  # fmt: skip
    project = wait_for(lambda: Project.objects.first(), timeout=60, what="the PSA project back in the hub")
    contract = wait_for(lambda: Contract.objects.filter(contract_number__startswith="CN-").first(), timeout=60,
                        what="the ERP's contract number on the golden contract")  # fmt: skip
    customer = Customer.objects.get()
    assert contract.opportunity_id == opportunity and contract.customer_id == customer.pk
    assert cycle.contract_golden_id == contract.pk and cycle.cycle_seconds > 0
    assert CrossReference.objects.get(system_id="erp", domain="contract").source_id == cycle.erp_contract_number
    assert CrossReference.objects.get(system_id="psa", domain="contract").source_id == cycle.psa_project_code
    assert contract.contract_number == cycle.erp_contract_number
    assert project.project_code == cycle.psa_project_code and project.contract_id == contract.pk
    wait_for(lambda: not Delivery.objects.exclude(status=DeliveryStatus.DONE).exists(), timeout=60, what="pushes")
    assert_delivered_once(sandbox, system="erp", obj="contract", domain="contract", golden_ids=[contract.pk])
    assert_delivered_once(sandbox, system="psa", obj="workspaces", domain="contract", golden_ids=[contract.pk])
    assert [r["ext_id"] for r in sandbox.records("erp", "customer")] == [str(customer.pk)]
    assert [r["data"]["Project_Code__c"] for r in sandbox.records("crm", "Project__c")] == [project.project_code]
