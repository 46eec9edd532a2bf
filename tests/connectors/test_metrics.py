"""/metrics: Prometheus text that the client's own parser reads, and each measure moves when its cause happens."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from django.contrib.auth import get_user_model
from prometheus_client.parser import text_string_to_metric_families

from canonical.audit import Channel, audit_context
from canonical.models import DataException
from connectors.ops.health import heartbeat_write
from connectors.reconciliation.services import reconciliation_run
from connectors.services.lead_to_project import lead_to_project_run
from connectors.services.pull import pull_run
from connectors.services.relay import relay_run

from .conftest import ingest, rec

FAMILIES = {
    "mdm_source_records", "mdm_match_outcomes", "mdm_review_backlog", "mdm_exceptions_open",
    "mdm_exception_oldest_age_seconds", "mdm_outbox_pending", "mdm_outbox_oldest_pending_age_seconds",
    "mdm_outbox_delivery_lag_seconds", "mdm_dead_letters", "mdm_reconciliation_differences",
    "mdm_records_out_of_sync", "mdm_reconciliation_last_run_timestamp_seconds", "mdm_sync_runs",
    "mdm_sync_last_run_timestamp_seconds", "mdm_api_request_duration_seconds", "mdm_project_setup_cycle_seconds",
    "mdm_deals_waiting_for_setup", "mdm_deals_waiting_oldest_age_seconds", "mdm_worker_heartbeat_age_seconds",
}  # fmt: skip


def scrape(client) -> dict[tuple[str, tuple], float]:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("text/plain")
    families = list(text_string_to_metric_families(resp.content.decode()))
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def no_kick(settings):
    settings.MDM_RELAY_KICK = False
    return settings


def test_metrics_parse_with_the_prometheus_parser_and_name_every_measure(client, db):
    resp = client.get("/metrics")
    names = {f.name for f in text_string_to_metric_families(resp.content.decode())}
    assert FAMILIES <= names, FAMILIES - names


def test_source_records_and_match_outcomes_follow_ingest(client, db, settings):
    settings.MDM_MATCHER = "tests.stewardship.matchers.NameReviewMatcher"  # a real matcher with a review zone
    before = scrape(client)
    ingest("crm", "customer", rec("001A", 0, name="Acme", website="https://acme.example"))  # new
    ingest("erp", "customer", rec("E-1", 0, name="Acme", website="https://acme.example"))  # links: auto
    ingest("crm", "customer", rec("001B", 0, name="Acme", website="https://acme-holding.example"))  # review
    ingest("crm", "customer", rec("001C", 0, name="Acme", website="https://acme.example", country="XX"))  # invalid
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("mdm_source_records", system="crm", domain="customer", status="applied") == 2
    assert delta("mdm_source_records", system="erp", domain="customer", status="applied") == 1
    assert delta("mdm_source_records", system="crm", domain="customer", status="invalid") == 1
    assert delta("mdm_match_outcomes", domain="customer", outcome="new") == 2
    assert delta("mdm_match_outcomes", domain="customer", outcome="auto") == 1
    assert delta("mdm_match_outcomes", domain="customer", outcome="review") == 1
    assert delta("mdm_review_backlog", domain="customer") == 1
    assert delta("mdm_exceptions_open", kind="validation", age="lt_1h") == 1


def test_the_exception_backlog_is_counted_by_age(client, db):
    ingest("crm", "customer", rec("001C", 0, name="Acme", country="XX"))
    exc = DataException.objects.get(kind="validation")
    with audit_context(actor="pytest", channel=Channel.JOB, reason="age the exception"):
        exc.created_at = exc.created_at - dt.timedelta(days=2)
        exc.save()
    samples = scrape(client)
    assert value(samples, "mdm_exceptions_open", kind="validation", age="lt_1h") == 0
    assert value(samples, "mdm_exceptions_open", kind="validation", age="1d_7d") == 1
    assert value(samples, "mdm_exception_oldest_age_seconds", kind="validation") >= 2 * 86400


def test_outbox_pending_age_lag_and_dead_letters_follow_the_relay(client, sandbox, connect, no_kick):
    connect(sandbox, "erp")
    ingest("crm", "customer", rec("001A", 0, name="Acme", website="https://acme.example"))
    waiting = scrape(client)
    assert value(waiting, "mdm_outbox_pending", system="erp") == 1
    assert value(waiting, "mdm_outbox_oldest_pending_age_seconds", system="erp") > 0
    assert value(waiting, "mdm_outbox_delivery_lag_seconds", system="erp", quantile="0.5") == 0

    relay_run(max_seconds=30)
    done = scrape(client)
    assert value(done, "mdm_outbox_pending", system="erp") == 0
    assert value(done, "mdm_outbox_oldest_pending_age_seconds", system="erp") == 0
    assert value(done, "mdm_outbox_delivery_lag_seconds", system="erp", quantile="0.5") > 0
    assert value(done, "mdm_sync_runs_total", system="erp", direction="push", status="succeeded") == 1
    assert value(done, "mdm_dead_letters", system="erp") == 0

    sandbox.faults("erp", fail_next=1, fail_status=400)
    ingest("crm", "customer", rec("001B", 0, name="Beta", website="https://beta.example"))
    relay_run(max_seconds=30)
    dead = scrape(client)
    assert value(dead, "mdm_dead_letters", system="erp") == 1
    assert value(dead, "mdm_exceptions_open", kind="dead_letter", age="lt_1h") == 1
    assert value(dead, "mdm_sync_runs_total", system="erp", direction="push", status="failed") == 1


def test_sync_runs_and_reconciliation_differences_per_system_and_kind(client, sandbox, connect, no_kick):
    connect(sandbox, "crm")
    row = sandbox.put(
        "crm", "Account", {"Name": "Acme", "Website": "https://acme.example"}, modified="2026-01-01T00:00:00Z"
    )
    pull_run(system="crm", domain="customer", trigger="test")
    samples = scrape(client)
    assert value(samples, "mdm_sync_runs_total", system="crm", direction="pull", status="succeeded") == 1
    assert value(samples, "mdm_sync_last_run_timestamp_seconds", system="crm", direction="pull") > 0
    assert value(samples, "mdm_reconciliation_differences", system="crm", kind="field_drift") == 0

    sandbox.put("crm", "Account", {"Name": "Acme Corp"}, id=row["id"], modified="2026-01-02T00:00:00Z")
    ingest("crm", "customer", rec("001GHOST", 0, name="Ghost", website="https://ghost.example"))
    reconciliation_run(system="crm", trigger="test")
    samples = scrape(client)
    assert value(samples, "mdm_reconciliation_differences", system="crm", kind="field_drift") == 1
    assert value(samples, "mdm_reconciliation_differences", system="crm", kind="missing_in_system") == 1
    assert value(samples, "mdm_records_out_of_sync", system="crm") == 1  # the ghost waits for a steward
    assert value(samples, "mdm_reconciliation_last_run_timestamp_seconds", system="crm", status="succeeded") > 0


def test_api_latency_is_a_histogram_per_route(client, db):
    route = "api/v1/reconciliation-runs/$"
    before = scrape(client)
    staff = get_user_model().objects.create_user("ops", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get("/api/v1/reconciliation-runs/").status_code == 200
    assert client.get("/api/v1/reconciliation-runs/").status_code == 200
    after = scrape(client)
    labels = {"method": "GET", "route": route, "status": "200"}
    assert (
        value(after, "mdm_api_request_duration_seconds_count", **labels)
        - value(before, "mdm_api_request_duration_seconds_count", **labels)
        == 2
    )
    assert value(after, "mdm_api_request_duration_seconds_bucket", le="+Inf", **labels) >= 2


def test_project_setup_cycle_time_and_deals_waiting_follow_the_lead_to_project_flow(client, sandbox, connect, no_kick):
    connect(sandbox, "crm", "erp", "psa")
    base = f"{sandbox.url}/crm/services/data/v60.0/sobjects"
    account = requests.post(f"{base}/Account", json={"Name": "Northwind Ltd", "Website": "https://northwind.example"},
                            timeout=5).json()["id"]  # fmt: skip
    opportunity = requests.post(f"{base}/Opportunity", timeout=5, json={
        "Name": "Northwind: data platform", "AccountId": account, "StageName": "Closed Won", "Amount": 250000,
        "CurrencyIsoCode": "EUR", "CloseDate": "2026-03-01", "Contract_Type__c": "fixed_fee"}).json()["id"]  # fmt: skip
    pull_run(system="crm", domain="customer", trigger="test")
    pull_run(system="crm", domain="contract", trigger="test")
    waiting = scrape(client)
    assert value(waiting, "mdm_deals_waiting_for_setup") == 1
    assert value(waiting, "mdm_deals_waiting_oldest_age_seconds") > 0
    assert value(waiting, "mdm_project_setup_cycle_seconds_count") == 0

    lead_to_project_run(opportunity_id=opportunity)
    done = scrape(client)
    assert value(done, "mdm_deals_waiting_for_setup") == 0
    assert value(done, "mdm_project_setup_cycle_seconds_count") == 1
    assert value(done, "mdm_project_setup_cycle_seconds_sum") > 0
    assert value(done, "mdm_project_setup_cycle_seconds_bucket", le="+Inf") == 1


def test_the_worker_heartbeat_age_appears_once_a_worker_beats(client, db):
    assert value(scrape(client), "mdm_worker_heartbeat_age_seconds") == -1
    heartbeat_write(worker="w1@test")
    assert 0 <= value(scrape(client), "mdm_worker_heartbeat_age_seconds") < 60


def test_a_metrics_token_when_set_is_required(client, db, settings):
    settings.MDM_METRICS_TOKEN = "s3cret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200
