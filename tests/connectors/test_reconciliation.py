"""Reconciliation against the sandbox systems over HTTP: drift injected in the systems and in the hub is
classified, healed through the pipeline (audited as job:reconcile) or raised for a steward, and a second
run right after finds nothing left to heal."""

from __future__ import annotations

import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from canonical.audit import Channel, audit_context
from canonical.models import CrossReference, Customer, DataException, SourceRecord
from connectors.models import Delivery, DeliveryStatus, ReconciliationItem, ReconciliationRun
from connectors.reconciliation.services import ReconciliationError, reconciliation_run
from connectors.services.pull import pull_run
from connectors.services.relay import relay_run

from .conftest import in_thread, ingest, rec

TS = "2026-02-01T09:00:00.000Z"
LATER = "2026-02-02T09:00:00.000Z"


@pytest.fixture
def systems(sandbox, connect, settings):
    settings.MDM_RELAY_KICK = False  # the tests run the relay themselves
    connect(sandbox, "crm", "erp")
    return sandbox


def account(box, name: str, website: str, **extra) -> dict:
    return box.put("crm", "Account", {"Name": name, "Website": website, **extra}, modified=TS)


def seed(box) -> dict[str, dict]:
    """Three CRM accounts, pulled into the hub, pushed to the ERP and pulled back from it."""
    rows = {n: account(box, n, f"https://{n.lower()}.example") for n in ("Acme", "Beta", "Gamma")}
    pull_run(system="crm", domain="customer", trigger="test")
    relay_run(max_seconds=30)
    pull_run(system="erp", domain="customer", trigger="test")
    return rows


def items(run: ReconciliationRun) -> list[tuple[str, str, str]]:
    return sorted(run.items.values_list("kind", "source_id", "action"))


def golden_of(system: str, source_id: str):
    return Customer.objects.get(pk=SourceRecord.objects.get(system_id=system, source_id=source_id).golden_id)


def test_a_system_in_step_with_the_hub_reconciles_clean(systems):
    seed(systems)
    for code in ("crm", "erp"):
        run = reconciliation_run(system=code, trigger="test")
        assert (run.status, run.counts, run.actions) == ("succeeded", {}, {}), run.errors
        assert run.records == 3 and run.items.count() == 0


def test_injected_drift_is_classified_healed_or_raised_and_a_second_run_is_clean(systems):
    rows = seed(systems)
    acme, beta, gamma = rows["Acme"]["id"], rows["Beta"]["id"], rows["Gamma"]["id"]
    gamma_golden = golden_of("crm", gamma).pk
    # 1. a record deleted in the system, 2. a field changed there (both missed by the pulls)
    systems.put("crm", "Account", {}, id=acme, deleted=True, modified=LATER)
    systems.put("crm", "Account", {"Name": "Beta Renamed"}, id=beta, modified=LATER)
    # 3. a cross-reference removed in the hub
    with audit_context(actor="pytest", channel=Channel.JOB, reason="inject drift"):
        CrossReference.objects.get(system_id="crm", domain="customer", source_id=gamma).delete()
    # 4. a duplicate created in the system (same company, same website), 5. a record the pulls never saw
    dup = account(systems, "Gamma Ltd", "https://gamma.example")["id"]
    new = account(systems, "Delta", "https://delta.example")["id"]

    run = reconciliation_run(system="crm", trigger="test")

    assert run.status == "succeeded", run.errors
    assert items(run) == sorted(
        [
            ("missing_in_system", acme, "healed"),
            ("field_drift", beta, "healed"),
            ("missing_in_hub", gamma, "healed"),
            ("missing_in_hub", dup, "healed"),
            ("missing_in_hub", new, "healed"),
            ("duplicate_in_system", dup, "raised"),
        ]
    )
    assert run.counts == {"missing_in_system": 1, "field_drift": 1, "missing_in_hub": 3, "duplicate_in_system": 1}
    assert run.actions == {"healed": 5, "raised": 1}
    # healed through the pipeline: the deletion was ingested (the ERP's copy keeps the golden record active),
    # the owner's new name won …
    assert SourceRecord.objects.get(system_id="crm", source_id=acme).status == "deleted"
    renamed = golden_of("crm", beta)
    assert renamed.name == "Beta Renamed"
    drift = run.items.get(kind="field_drift")
    assert drift.fields == {"name": {"hub": "Beta", "system": "Beta Renamed"}}
    history = renamed.history.first()
    assert (history.history_actor, history.history_channel) == ("job:reconcile", "job")
    assert "field drift" in history.history_change_reason
    # … the cross-reference is back, with its history saying who restored it and why
    xref = CrossReference.objects.get(system_id="crm", domain="customer", source_id=gamma)
    assert xref.golden_id == gamma_golden
    restored = xref.history.first()
    assert (restored.history_type, restored.history_actor) == ("+", "job:reconcile")
    assert "cross-reference is missing" in restored.history_change_reason
    # the duplicate joined the same golden record and waits for a steward
    assert golden_of("crm", dup).pk == gamma_golden
    exc = DataException.objects.get(kind="reconciliation")
    assert (exc.status, exc.system_id, exc.golden_id, exc.source_record.source_id) == ("open", "crm", gamma_golden, dup)
    assert exc.history.get().history_actor == "job:reconcile"
    assert run.items.get(kind="duplicate_in_system").exception_id == exc.pk

    again = reconciliation_run(system="crm", trigger="test")
    assert again.actions == {"open": 1}, items(again)  # nothing left to heal: only the steward's open case
    assert items(again) == [("duplicate_in_system", dup, "open")]
    assert DataException.objects.filter(kind="reconciliation").count() == 1

    # The steward removes the duplicate in the CRM: the next run ingests the deletion and closes the case.
    systems.put("crm", "Account", {}, id=dup, deleted=True, modified=LATER)
    third = reconciliation_run(system="crm", trigger="test")
    assert items(third) == [("missing_in_system", dup, "healed")]
    exc.refresh_from_db()
    assert exc.status == "resolved" and str(third.pk) in exc.resolution_note
    fourth = reconciliation_run(system="crm", trigger="test")
    assert (fourth.counts, fourth.actions) == ({}, {})


def test_a_record_absent_from_the_system_is_raised_not_deleted(systems):
    seed(systems)
    ingest("crm", "customer", rec("001GHOST", 0, name="Ghost", website="https://ghost.example"))
    run = reconciliation_run(system="crm", domain="customer", trigger="test")
    assert items(run) == [("missing_in_system", "001GHOST", "raised")]
    assert SourceRecord.objects.get(source_id="001GHOST").status == "applied"
    exc = DataException.objects.get(kind="reconciliation")
    assert "absent" in exc.message and "deleted=true" in exc.message
    again = reconciliation_run(system="crm", domain="customer", trigger="test")
    assert items(again) == [("missing_in_system", "001GHOST", "open")]
    assert DataException.objects.filter(kind="reconciliation").count() == 1


def test_an_orphan_cross_reference_is_pointed_back_at_its_source_records_golden_record(systems):
    rows = seed(systems)
    beta = rows["Beta"]["id"]
    xref = CrossReference.objects.get(system_id="crm", source_id=beta)
    right = xref.golden_id
    with audit_context(actor="pytest", channel=Channel.JOB, reason="inject drift"):
        xref.golden_id = uuid.uuid4()
        xref.save()
    run = reconciliation_run(system="crm", trigger="test")
    assert items(run) == [("orphan_xref", beta, "healed")]
    xref.refresh_from_db()
    assert xref.golden_id == right
    assert xref.history.first().history_actor == "job:reconcile"
    assert reconciliation_run(system="crm", trigger="test").counts == {}


def test_a_field_the_system_receives_is_re_pushed_through_the_outbox(systems):
    rows = seed(systems)
    golden = golden_of("crm", rows["Acme"]["id"])
    erp_id = CrossReference.objects.get(system_id="erp", golden_id=golden.pk).source_id
    systems.put("erp", "customer", {"companyName": "ACME (typo)"}, id=erp_id)

    run = reconciliation_run(system="erp", trigger="test")

    # The hub's copy of the ERP record is refreshed (the ERP does not own the name: kept, not applied) and the
    # golden name, which the CRM owns, is pushed again.
    assert sorted(run.items.values_list("kind", "action", "reason")) == [
        ("field_drift", "healed", "a field the system receives from the hub differs from the golden value"),
        ("field_drift", "healed", "the system's record differs from the version the hub holds"),
    ]
    pushed = run.items.get(reason__startswith="a field the system receives")
    assert pushed.fields == {"name": {"hub": "Acme", "system": "ACME (typo)"}}
    golden.refresh_from_db()
    assert golden.name == "Acme"
    pending = Delivery.objects.get(system_id="erp", golden_id=golden.pk, status=DeliveryStatus.PENDING)
    assert f"delivery {pending.pk}" in pushed.outcome

    again = reconciliation_run(system="erp", trigger="test")  # right after: the push is on its way
    assert again.actions == {"in_flight": 1}

    relay_run(max_seconds=30)
    assert [r["data"]["companyName"] for r in systems.records("erp", "customer") if r["id"] == erp_id] == ["Acme"]
    pull_run(system="erp", domain="customer", trigger="test")  # the pull brings the corrected record back
    assert reconciliation_run(system="erp", trigger="test").counts == {}


def test_a_record_never_delivered_to_a_receiving_system_is_pushed(systems, connect):
    connect(systems, "psa")
    rows = seed(systems)
    ingest("crm", "contract", rec("006X", 0, contract_number="C-1", customer=rows["Acme"]["id"], title="Deal"))
    Delivery.objects.filter(system_id="psa").delete()  # the PSA's push was lost before it was ever written
    golden = SourceRecord.objects.get(source_id="006X").golden_id

    run = reconciliation_run(system="psa", trigger="test")

    assert run.domains == ["contract", "project"]  # receives contracts (as workspaces), sends projects
    assert list(run.items.values_list("kind", "golden_id", "action")) == [("missing_in_system", golden, "healed")]
    assert Delivery.objects.get(system_id="psa").status == DeliveryStatus.PENDING
    assert reconciliation_run(system="psa", trigger="test").counts == {}  # queued: nothing left to heal
    relay_run(max_seconds=30)
    assert [r["ext_id"] for r in systems.records("psa", "workspaces")] == [str(golden)]
    pull_run(system="psa", domain="project", trigger="test")
    assert reconciliation_run(system="psa", trigger="test").counts == {}
    with pytest.raises(ReconciliationError, match="neither sends nor receives rate_card"):
        reconciliation_run(system="psa", domain="rate_card", trigger="test")


def test_a_failing_snapshot_marks_the_run_failed_and_closes_nothing(systems):
    seed(systems)
    ingest("crm", "customer", rec("001GHOST", 0, name="Ghost", website="https://ghost.example"))
    reconciliation_run(system="crm", trigger="test")
    systems.faults("crm", fail_next=1, fail_status=400)
    run = reconciliation_run(system="crm", trigger="test")
    assert run.status == "failed" and "400" in run.errors[0]
    assert DataException.objects.get(kind="reconciliation").status == "open"


def test_an_unexpected_error_ends_the_run_failed_with_the_error_recorded(systems, monkeypatch):
    def broken_connector(conn):
        raise RuntimeError("connector broke")

    monkeypatch.setattr("connectors.reconciliation.services.connector_for", broken_connector)
    with pytest.raises(RuntimeError, match="connector broke"):
        reconciliation_run(system="crm", trigger="test")
    run = ReconciliationRun.objects.get()
    assert run.status == "failed" and run.finished_at is not None
    assert run.errors == ["unexpected error: RuntimeError('connector broke')"]


def test_the_command_reports_counts_and_refuses_bad_input_with_a_clear_message(systems, capsys):
    seed(systems)
    systems.put("crm", "Account", {"Name": "Beta Renamed"}, id=systems.records("crm", "Account")[1]["id"],
                modified=LATER)  # fmt: skip
    call_command("reconcile", "--system", "crm")
    out = capsys.readouterr().out
    assert "field drift 1" in out and "healed 1" in out
    with pytest.raises(CommandError, match="no connection for system 'nope'"):
        call_command("reconcile", "--system", "nope")
    with pytest.raises(CommandError, match="unknown domain 'widgets'"):
        call_command("reconcile", "--system", "crm", "--domain", "widgets")
    assert ReconciliationRun.objects.count() == 1
    assert ReconciliationItem.objects.count() == 1


def test_reconcile_without_a_connection_says_how_to_configure_one_as_sync_does(db):
    with pytest.raises(CommandError) as reconcile:
        call_command("reconcile", "--system", "crm")
    with pytest.raises(CommandError) as sync:
        call_command("sync", "--system", "crm")
    assert str(reconcile.value) == str(sync.value)
    assert "configured: none yet" in str(reconcile.value)
    assert "in the admin, or run `manage.py sandbox configure --url URL`" in str(reconcile.value)
    assert not ReconciliationRun.objects.exists()


def test_rows_of_the_snapshot_that_are_not_records_stay_on_the_finished_run(systems, monkeypatch):
    # the snapshot pass puts them on the run; finishing it replaced them with the run's own errors (none)
    from connectors.base import Cursor, PullPage
    from connectors.reconciliation import services

    real_connector_for = services.connector_for

    def with_a_bad_row(conn):
        connector = real_connector_for(conn)
        snapshot = connector.snapshot

        def snapshot_and_a_bad_row(*, domain):
            yield PullPage(domain=domain, envelopes=[], cursor=Cursor(),
                           errors=["Account 001X: source_id: this field is required"])  # fmt: skip
            yield from snapshot(domain=domain)

        connector.snapshot = snapshot_and_a_bad_row
        return connector

    monkeypatch.setattr("connectors.reconciliation.services.connector_for", with_a_bad_row)
    run = reconciliation_run(system="crm", domain="customer", trigger="test")

    assert run.errors == ["customer: Account 001X: source_id: this field is required"]
    assert ReconciliationRun.objects.get(pk=run.pk).errors == run.errors


@pytest.mark.postgres  # the run lock is PostgreSQL's advisory lock (the SQLite demo runs in one process)
@pytest.mark.django_db(transaction=True)
def test_a_second_reconciliation_of_a_system_while_one_runs_is_refused_saying_which_run(systems, capsys):
    """The nightly job and an operator's command at once raised every difference twice, and one run's closing pass
    could resolve what the other had just raised: the second is refused, naming the run in progress, and leaves no
    run of its own; once the first is done, the next one runs."""
    seed(systems)
    systems.faults("crm", slow_ms=1500)
    thread, first = in_thread(lambda: reconciliation_run(system="crm", trigger="test"))
    try:
        import time

        deadline = time.monotonic() + 10
        while not ReconciliationRun.objects.filter(status="running").exists():
            assert time.monotonic() < deadline, "the first run did not start"
            time.sleep(0.05)
        running = ReconciliationRun.objects.get(status="running")
        with pytest.raises(ReconciliationError, match=rf"already running \(run {running.pk}, started "):
            reconciliation_run(system="crm", trigger="test")
        with pytest.raises(CommandError, match="already running"):
            call_command("reconcile", "--system", "crm", "--no-progress")
        assert reconciliation_run(system="erp", trigger="test").status == "succeeded", "another system runs"
    finally:
        systems.faults("crm", slow_ms=0)
        thread.join(60)
    assert not thread.is_alive() and first["result"].status == "succeeded"
    assert ReconciliationRun.objects.filter(system_id="crm").count() == 1
    again = reconciliation_run(system="crm", trigger="test")
    assert again.status == "succeeded" and ReconciliationRun.objects.filter(system_id="crm").count() == 2
