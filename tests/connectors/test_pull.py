"""Inbound pulls through the governed pipeline: cursor with the batch, overlap, deletes, idempotence."""

import pytest

from canonical.models import ChangeEvent, Customer, GoldenStatus, SourceRecord
from connectors.base import Cursor
from connectors.models import Connection, SyncCursor, SyncRun
from connectors.services.pull import pull_run

from .conftest import in_thread

TS = "2026-02-01T09:00:00.000Z"


@pytest.fixture
def crm(sandbox, connect):
    connect(sandbox, "crm", options={"crm": {"batch_size": 200}})
    return sandbox


def accounts(box, n: int, *, modified: str = TS, prefix: str = "Acct") -> list[dict]:
    return box.put_many([{"system": "crm", "object": "Account", "modified": modified,
                          "data": {"Name": f"{prefix} {i}", "Website": f"https://{prefix.lower()}{i}.example"}}
                         for i in range(n)])  # fmt: skip


def test_pull_ingests_as_the_system_and_saves_the_cursor_with_the_batch(crm):
    rows = accounts(crm, 3)
    run = pull_run(system="crm", domain="customer", trigger="test")
    assert run.status == "succeeded" and run.counts == {"created": 3}
    assert Customer.objects.count() == 3
    cursor = SyncCursor.objects.get(system_id="crm", domain="customer")
    assert Cursor.from_json(cursor.position) == Cursor.from_json(run.cursor_after)
    assert cursor.position["id"] == max(r["id"] for r in rows)
    history = Customer.history.filter(history_type="+").first()
    assert history.history_channel == "connector" and history.history_actor == "connector:crm"


def test_a_second_pull_rereads_the_overlap_and_changes_nothing(crm):
    accounts(crm, 4)
    pull_run(system="crm", domain="customer")
    events = ChangeEvent.objects.count()
    again = pull_run(system="crm", domain="customer")
    assert again.counts == {"unchanged": 4}
    assert ChangeEvent.objects.count() == events


def test_rows_sharing_one_timestamp_across_pages_and_an_expired_locator_are_each_ingested_once(crm):
    # (The end-to-end suite does this with 500 rows and a real worker; here 120 rows in pages of 50.)
    Connection.objects.filter(system_id="crm").update(options={"batch_size": 50})
    accounts(crm, 120)
    crm.faults("crm", locator_expire_next=1)
    run = pull_run(system="crm", domain="customer")
    assert run.counts == {"created": 120}
    assert run.pages == 3
    assert SourceRecord.objects.filter(system_id="crm", domain="customer").count() == 120
    assert ChangeEvent.objects.filter(type="golden.created", domain="customer").count() == 120


def test_a_row_committed_late_with_an_earlier_timestamp_is_still_pulled(crm):
    accounts(crm, 2, modified="2026-02-01T09:00:10.000Z")
    pull_run(system="crm", domain="customer")
    accounts(crm, 1, modified="2026-02-01T09:00:08.000Z", prefix="Late")
    run = pull_run(system="crm", domain="customer")
    assert run.counts == {"created": 1, "unchanged": 2}
    assert Customer.objects.filter(name="Late 0").exists()


def test_a_deleted_account_deactivates_its_golden_record(crm):
    row = accounts(crm, 1)[0]
    pull_run(system="crm", domain="customer")
    crm.put("crm", "Account", {}, id=row["id"], deleted=True, modified="2026-02-01T09:05:00.000Z")
    run = pull_run(system="crm", domain="customer")
    assert run.counts == {"deleted": 1}
    assert Customer.objects.get().status == GoldenStatus.INACTIVE


def test_a_failing_system_leaves_the_cursor_where_it_was_and_the_run_says_why(crm):
    accounts(crm, 2)
    crm.faults("crm", fail_next=1, fail_status=503)
    run = pull_run(system="crm", domain="customer")
    assert run.status == "failed" and "503" in run.errors[0]
    assert SyncCursor.objects.get(system_id="crm", domain="customer").position == {}
    assert pull_run(system="crm", domain="customer").counts == {"created": 2}
    assert SyncRun.objects.filter(direction="pull").count() == 2


def test_hr_psa_and_erp_pulls_map_their_records(sandbox, connect):
    connect(sandbox, "hr", "psa", "erp")
    sandbox.put("hr", "workers", {"First_Name": "Ada", "Last_Name": "Lovelace", "Employee_ID": "E1",
                                  "Email_Address": "ada@firm.example", "Worker_Type": "Employee"})  # fmt: skip
    sandbox.put("psa", "workspaces", {"title": "Rollout", "project_code": "PRJ-1"})
    sandbox.put("psa", "workspaces", {"title": "Old", "project_code": "PRJ-2"}, deleted=True)
    sandbox.put("erp", "legalentity", {"name": "Acme GmbH", "country": "DE", "isInternal": "F"})
    assert pull_run(system="hr", domain="resource").counts == {"created": 1}
    assert pull_run(system="psa", domain="project").counts == {"created": 1, "deleted": 1}
    assert pull_run(system="erp", domain="legal_entity").counts == {"created": 1}


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_unexpected_error_inside_the_pull_ends_the_run_failed_and_frees_the_cursor(crm, monkeypatch, error):
    accounts(crm, 2)

    def broken_ingest(**kwargs):
        raise error("ingest broke")

    monkeypatch.setattr("connectors.services.pull.source_records_ingest", broken_ingest)
    with pytest.raises(error, match="ingest broke"):
        pull_run(system="crm", domain="customer")
    run = SyncRun.objects.get(direction="pull")
    assert run.status == "failed" and run.finished_at is not None
    assert run.errors == [f"unexpected error: {error.__name__}('ingest broke')"]
    cursor = SyncCursor.objects.get(system_id="crm", domain="customer")
    assert (cursor.position, cursor.lease_token) == ({}, "")
    monkeypatch.undo()
    assert pull_run(system="crm", domain="customer").counts == {"created": 2}


def test_a_pull_of_a_system_without_an_enabled_connection_says_what_to_do(crm):
    from connectors.services.pull import PullError

    with pytest.raises(PullError, match=r"no connection for system 'psa' \(configured: crm\)"):
        pull_run(system="psa", domain="project")
    Connection.objects.filter(system_id="crm").update(enabled=False)
    with pytest.raises(PullError, match="the connection of 'crm' is disabled; enable it in the admin first"):
        pull_run(system="crm", domain="customer")
    assert not SyncRun.objects.exists()


def test_an_erp_row_changed_during_a_paged_pull_costs_no_other_row(sandbox, connect):
    """Five ERP customers pulled two a page; after the first page the first row changes in the ERP (the hub's own
    push, say). With offset paging the rows after it moved back a place and one was never returned, its time older
    than the cursor the pull saved; paged by keyset every row arrives, the changed one at the end."""
    connect(sandbox, "erp", options={"erp": {"page_size": 2}})
    rows = sandbox.put_many([{"system": "erp", "object": "customer", "modified": f"2026-01-0{i + 1}T00:00:00Z",
                              "data": {"companyName": f"Cust {i}", "country": "DE"}} for i in range(5)])  # fmt: skip
    changed = []

    def progress(n):
        if not changed:
            sandbox.put("erp", "customer", {"companyName": "Cust 0 renamed"}, id=rows[0]["id"])
            changed.append(1)

    run = pull_run(system="erp", domain="customer", progress=progress)

    assert run.status == "succeeded"
    held = dict(SourceRecord.objects.filter(system_id="erp", domain="customer").values_list("source_id", "values"))
    assert set(held) == {r["id"] for r in rows}
    assert held[rows[0]["id"]]["name"] == "Cust 0 renamed"


def test_a_psa_workspace_changed_during_a_paged_pull_costs_no_other_one(sandbox, connect):
    """The same for the PSA, which pages by page number: five workspaces two a page, the first renamed after the
    first page. Every project arrives, the renamed one with its new title."""
    connect(sandbox, "psa", options={"psa": {"per_page": 2}})
    rows = sandbox.put_many([{"system": "psa", "object": "workspaces", "modified": f"2026-01-0{i + 1}T00:00:00Z",
                              "data": {"title": f"Proj {i}"}} for i in range(5)])  # fmt: skip
    changed = []

    def progress(n):
        if not changed:
            sandbox.put("psa", "workspaces", {"title": "Proj 0 renamed"}, id=rows[0]["id"])
            changed.append(1)

    run = pull_run(system="psa", domain="project", progress=progress)

    assert run.status == "succeeded"
    held = dict(SourceRecord.objects.filter(system_id="psa", domain="project").values_list("source_id", "values"))
    assert set(held) == {r["data"]["project_code"] for r in rows}
    assert held[rows[0]["data"]["project_code"]]["name"] == "Proj 0 renamed"


@pytest.mark.postgres  # two pulls at once from two threads: SQLite's in-memory test database locks whole tables
@pytest.mark.django_db(transaction=True)
def test_a_page_that_takes_longer_than_the_lease_keeps_it_and_a_pull_started_meanwhile_stands_aside(
    sandbox, connect, settings, monkeypatch
):
    """A page's ingest can outlast the cursor's lease (2,000 records record by record). The pull keeps its lease
    while it works, so the next scheduled pull of the same cursor finds it held and does nothing; had it taken the
    lease, the first pull's page was rolled back at its end (LeaseLost), and a pull slower than the lease, taken
    over every time, never got anywhere."""
    import threading
    import time

    from connectors.services import pull as pull_module

    settings.MDM_DELIVERY_LEASE_SECONDS = 1
    connect(sandbox, "crm", options={"crm": {"batch_size": 200}})
    accounts(sandbox, 3)
    real_ingest = pull_module.source_records_ingest
    in_page = threading.Event()

    def slow_ingest(**kwargs):
        results = real_ingest(**kwargs)
        in_page.set()
        time.sleep(3)  # three leases
        return results

    monkeypatch.setattr(pull_module, "source_records_ingest", slow_ingest)
    thread, first = in_thread(lambda: pull_run(system="crm", domain="customer", trigger="test"))
    try:
        assert in_page.wait(30)
        time.sleep(1.5)  # the lease taken at the start has run out by now, had nothing kept it
        monkeypatch.setattr(pull_module, "source_records_ingest", real_ingest)
        assert pull_run(system="crm", domain="customer", trigger="test") is None, "the cursor is held by the first"
    finally:
        thread.join(30)
    assert not thread.is_alive()
    run = first["result"]
    assert run.status == "succeeded" and run.counts == {"created": 3}, run.errors
    assert Customer.objects.count() == 3
    cursor = SyncCursor.objects.get(system_id="crm", domain="customer")
    assert (cursor.lease_token, cursor.lease_until) == ("", None)
    assert Cursor.from_json(cursor.position) == Cursor.from_json(run.cursor_after)
