"""The outbox relay, run in-process against the sandbox over HTTP: claim order, upsert by golden id,
cross-references in the same transaction, retries with backoff, dead letters with replay."""

import datetime as dt

import pytest
from django.utils import timezone

from canonical.models import CrossReference, Customer, DataException
from connectors.models import DeadLetter, Delivery, DeliveryStatus, SyncRun
from connectors.services.dead_letters import dead_letter_replay_for_exception
from connectors.services.relay import deliveries_claim, relay_run

from .conftest import assert_delivered_once, in_thread, ingest, rec


@pytest.fixture
def erp(sandbox, connect, settings):
    settings.MDM_RETRY_BASE_SECONDS = 0.01
    settings.MDM_RETRY_CAP_SECONDS = 0.05
    connect(sandbox, "erp")
    return sandbox


def customers(n: int, seconds: float = 0, **extra) -> list:
    results = ingest("crm", "customer", *[rec(f"001{i:03d}", seconds, name=f"Customer {i}", **extra) for i in range(n)])
    return [r.golden_id for r in results]


def due_now() -> None:
    for d in Delivery.objects.filter(status=DeliveryStatus.PENDING):
        d.next_attempt_at = timezone.now() - dt.timedelta(seconds=1)
        d.save(update_fields=["next_attempt_at"])


def test_push_upserts_by_golden_id_and_keeps_the_remote_id_as_a_cross_reference(erp, audit):
    golden = customers(3)
    totals = relay_run(max_seconds=30)
    assert totals["erp"].delivered == 3
    assert_delivered_once(erp, system="erp", obj="customer", domain="customer", golden_ids=golden)
    remote = {r["ext_id"]: r["id"] for r in erp.records("erp", "customer")}
    for xref in CrossReference.objects.filter(system_id="erp"):
        assert remote[str(xref.golden_id)] == xref.source_id
        assert xref.history.get().history_channel == "connector"
    run = SyncRun.objects.get(direction="push")
    assert run.counts["delivered"] == 3 and run.system_id == "erp"


def test_only_the_oldest_open_change_of_a_record_is_claimable_and_a_push_settles_the_later_ones(erp, audit):
    ingest("crm", "customer", rec("001A", 0, name="Acme", website="https://acme.example"))
    ingest("crm", "customer", rec("001A", 10, name="Acme Corp", website="https://acme.example"))
    ingest("crm", "customer", rec("001A", 20, name="Acme Corporation", website="https://acme.example"))
    first, *later = Delivery.objects.order_by("id")
    assert len(later) == 2
    assert deliveries_claim(limit=10, token="t1") == [first.pk]
    assert deliveries_claim(limit=10, token="t2") == []
    Delivery.objects.filter(pk=first.pk).update(status=DeliveryStatus.PENDING, lease_token="")
    relay_run(max_seconds=30)
    assert set(Delivery.objects.values_list("status", "coalesced")) == {("done", False), ("done", True)}
    assert [r["data"]["companyName"] for r in erp.records("erp", "customer")] == ["Acme Corporation"]
    assert len(erp.writes("erp", "customer")) == 1


def test_values_that_came_from_the_target_are_not_sent_back_to_it(erp, audit):
    ingest("crm", "customer", rec("001A", 0, name="Acme", website="https://acme.example", city="Munich"))
    ingest("erp", "customer", rec("C-1", 5, name="Acme", website="https://acme.example", city="Berlin"))
    golden = Customer.objects.get()
    assert golden.city == "Berlin" and golden.provenance["city"]["system"] == "erp"
    relay_run(max_seconds=30)
    (record,) = erp.records("erp", "customer")
    assert record["data"]["companyName"] == "Acme"
    assert "city" not in record["data"]


def test_a_server_error_is_retried_with_backoff_then_delivered(erp, audit, settings):
    settings.MDM_RETRY_BASE_SECONDS, settings.MDM_RETRY_CAP_SECONDS = 30, 60
    golden = customers(1)
    erp.faults("erp", fail_next=1, fail_status=500)
    relay_run(max_seconds=30, batch_size=1)
    d = Delivery.objects.get()
    assert (d.status, d.attempts) == ("pending", 1) and "500" in d.last_error
    assert d.next_attempt_at > timezone.now() + dt.timedelta(seconds=10), "backoff: not before 15-30 s"
    due_now()
    relay_run(max_seconds=30, batch_size=1)
    d.refresh_from_db()
    assert (d.status, d.attempts) == ("done", 2)
    assert_delivered_once(erp, system="erp", obj="customer", domain="customer", golden_ids=golden)


def test_a_rate_limit_pauses_the_system_and_does_not_use_up_attempts(erp, audit, settings):
    customers(2)
    erp.faults("erp", rate_limit_next=1, retry_after=30)
    relay_run(max_seconds=5)
    pending = list(Delivery.objects.values_list("status", "attempts", "last_error"))
    assert [(s, a) for s, a, _ in pending] == [("pending", 0), ("pending", 0)]
    assert "429" in pending[0][2]
    assert all(d.next_attempt_at > timezone.now() + dt.timedelta(seconds=25) for d in Delivery.objects.all())
    due_now()
    assert relay_run(max_seconds=5) == {}  # the system is paused, so nothing is claimed
    assert erp.calls()["erp"] == 1


def test_a_permanent_error_is_a_dead_letter_in_the_exception_queue_and_replay_delivers_it(erp, audit):
    golden = customers(1)
    erp.faults("erp", fail_next=1, fail_status=400)
    relay_run(max_seconds=30)
    letter = DeadLetter.objects.get()
    assert letter.permanent and letter.attempts == 1
    exc = DataException.objects.get(kind="dead_letter")
    assert exc.status == "open" and exc.system_id == "erp" and str(exc.golden_id) == golden[0]
    assert "replay" in exc.message
    dead_letter_replay_for_exception(exception_id=exc.pk)
    relay_run(max_seconds=30)
    exc.refresh_from_db()
    assert exc.status == "resolved"
    assert_delivered_once(erp, system="erp", obj="customer", domain="customer", golden_ids=golden)


def test_retries_that_run_out_become_a_dead_letter(erp, audit, settings):
    settings.MDM_DELIVERY_MAX_ATTEMPTS = 2
    customers(1)
    erp.faults("erp", fail_next=5, fail_status=503)
    relay_run(max_seconds=30)
    due_now()
    relay_run(max_seconds=30)
    d = Delivery.objects.get()
    assert d.status == DeliveryStatus.DEAD and d.attempts == 2
    assert not DeadLetter.objects.get().permanent


def test_a_lease_that_ran_out_is_claimed_again_and_the_late_worker_cannot_settle_it(erp, audit):
    customers(1)
    (pk,) = deliveries_claim(limit=5, token="dead-worker")
    Delivery.objects.filter(pk=pk).update(lease_until=timezone.now() - dt.timedelta(seconds=1))
    assert deliveries_claim(limit=5, token="live-worker") == [pk]
    d = Delivery.objects.get()
    assert d.lease_token == "live-worker" and d.attempts == 2
    from connectors.services.relay import relay_batch

    assert relay_batch(ids=[pk], token="dead-worker") == {}
    assert relay_batch(ids=[pk], token="live-worker")["erp"].delivered == 1


def test_an_unexpected_error_during_a_push_is_recorded_as_a_failed_run(erp, audit, monkeypatch):
    customers(2)

    def broken_settle(*args, **kwargs):
        raise RuntimeError("settle broke")

    monkeypatch.setattr("connectors.services.relay._settle_ok", broken_settle)
    with pytest.raises(RuntimeError, match="settle broke"):
        relay_run(max_seconds=30)
    run = SyncRun.objects.get(direction="push")
    assert (run.system_id, run.status) == ("erp", "failed") and run.finished_at is not None
    assert run.errors == ["unexpected error: RuntimeError('settle broke')"]
    assert run.counts["claimed"] == 2


def test_waiting_out_a_disabled_connection_uses_no_attempt(sandbox, connect, settings):
    """An admin disables the ERP's connection for maintenance while changes wait: each relay run puts them back
    without asking the ERP, and that is no attempt. After it is enabled again, one transient error is a retry, not
    a dead letter."""
    from connectors.models import Connection

    settings.MDM_DELIVERY_MAX_ATTEMPTS = 3
    connect(sandbox, "erp")
    ingest("crm", "customer", rec("001A", 0, name="Acme", website="https://acme.example"))
    Connection.objects.filter(system_id="erp").update(enabled=False)
    for _ in range(4):
        relay_run(max_seconds=5)
        Delivery.objects.filter(status="pending").update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))
    assert Delivery.objects.get().attempts == 0
    assert not SyncRun.objects.filter(system_id="erp", direction="push").exists()  # not claimed: no failed runs

    Connection.objects.filter(system_id="erp").update(enabled=True)
    sandbox.faults("erp", fail_next=1, fail_status=503)
    relay_run(max_seconds=5)

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    assert "503" in delivery.last_error


def test_a_record_that_came_from_the_erp_is_updated_there_not_created_again(sandbox, connect):
    """ERP customer 1001 is pulled, a steward corrects its name, the relay pushes the correction to the ERP: the
    ERP's own record 1001 is updated (and tagged with the hub's id), no second customer is made."""
    from canonical.audit import Channel, audit_context
    from connectors.services.pull import pull_run
    from stewardship.services.overrides import field_override_set

    connect(sandbox, "erp")
    (row,) = sandbox.put_many(
        [{"system": "erp", "object": "customer", "modified": "2026-01-01T00:00:00Z",
          "data": {"companyName": "Acme GmbH", "country": "DE"}}]
    )  # fmt: skip
    pull_run(system="erp", domain="customer")
    golden = Customer.objects.get()
    with audit_context(actor="steward", channel=Channel.STEWARD, reason="official name"):
        field_override_set(domain="customer", golden_id=golden.pk, field="name", value="Acme GmbH (DE)", reason="r")

    relay_run(max_seconds=5)

    (only,) = sandbox.records("erp", "customer")
    assert only["id"] == row["id"] and only["ext_id"] == str(golden.pk)
    assert only["data"]["companyName"] == "Acme GmbH (DE)"
    assert list(CrossReference.objects.filter(system_id="erp").values_list("source_id", flat=True)) == [row["id"]]
    assert Delivery.objects.get(system_id="erp").status == DeliveryStatus.DONE

    # and the next change goes to the same record through the hub's id
    with audit_context(actor="steward", channel=Channel.STEWARD, reason="again"):
        field_override_set(domain="customer", golden_id=golden.pk, field="name", value="Acme AG", reason="r")
    relay_run(max_seconds=5)
    (only,) = sandbox.records("erp", "customer")
    assert only["data"]["companyName"] == "Acme AG"


def test_a_contract_change_does_not_overwrite_the_project_fields_the_psa_owns(sandbox, connect):
    """The PSA sets up a workspace from a pushed contract, then plans it (its own title and budget: projects are the
    PSA's). A later contract change reaches the workspace's identifiers, not the PSA's plan."""
    from canonical.models import Project
    from connectors.services.pull import pull_run

    connect(sandbox, "psa")
    ingest("crm", "customer", rec("001A", 0, name="Acme", website="https://acme.example"))
    contract = {"contract_number": "OPP-006A", "title": "Acme data platform", "customer": "001A", "currency": "EUR"}
    ingest("crm", "contract", rec("006A", 0, total_value="1000", **contract))
    relay_run(max_seconds=10)
    (ws,) = sandbox.records("psa", "workspaces")
    assert (ws["data"]["title"], ws["data"]["price_in_cents"]) == ("Acme data platform", 100000)  # seeded
    sandbox.put("psa", "workspaces", {"title": "Phase 1 delivery", "price_in_cents": 50000}, id=ws["id"])
    pull_run(system="psa", domain="project")

    ingest("crm", "contract", rec("006A", 10, total_value="2000", **contract))
    relay_run(max_seconds=10)
    pull_run(system="psa", domain="project")

    (ws,) = sandbox.records("psa", "workspaces")
    assert (ws["data"]["title"], ws["data"]["price_in_cents"]) == ("Phase 1 delivery", 50000)
    project = Project.objects.get()
    assert (project.name, project.budget_amount) == ("Phase 1 delivery", 500)


def _webhook_subscriber(sandbox):
    from canonical.audit import Channel, audit_context
    from canonical.models import System
    from connectors.services.connections import connection_configure

    with audit_context(actor="pytest", channel=Channel.JOB, reason="test"):
        System.objects.create(code="warehouse", name="DW", kind="webhook", subscribed_domains=["customer"])
        connection_configure(system="warehouse", kind="webhook", base_url=f"{sandbox.url}/hooks/warehouse",
                             secret="s")  # fmt: skip
    sandbox.admin("POST", "hooks", json={"name": "warehouse", "secret": "s"})


def _versions_received(sandbox) -> list[int]:
    hooks = sandbox.admin("GET", "hooks", params={"name": "warehouse"})
    return [h["body"]["data"]["version"] for h in hooks if h["valid"] and h["body"]]


def test_a_webhook_subscriber_gets_a_records_events_in_order_across_a_dead_letter(sandbox, db):
    """Event v1 is refused for good (a dead letter); v2 waits behind it instead of overtaking it; replayed, v1 goes
    first, then v2."""
    from connectors.services.dead_letters import dead_letter_replay

    _webhook_subscriber(sandbox)
    ingest("crm", "customer", rec("001A", 0, name="Acme v1"))
    sandbox.faults("hooks", fail_next=1, fail_status=400)
    relay_run(max_seconds=5)
    ingest("crm", "customer", rec("001A", 10, name="Acme v2"))
    relay_run(max_seconds=5)
    assert _versions_received(sandbox) == []
    assert Delivery.objects.get(system_id="warehouse", version=2).status == DeliveryStatus.PENDING

    dead_letter_replay(dead_letter_id=DeadLetter.objects.get().pk)
    relay_run(max_seconds=5)

    assert _versions_received(sandbox) == [1, 2]


def test_a_dead_letter_a_steward_gave_up_on_holds_back_nothing(sandbox, db):
    from stewardship.services.data_exceptions import data_exception_ignore

    _webhook_subscriber(sandbox)
    ingest("crm", "customer", rec("001A", 0, name="Acme v1"))
    sandbox.faults("hooks", fail_next=1, fail_status=400)
    relay_run(max_seconds=5)
    ingest("crm", "customer", rec("001A", 10, name="Acme v2"))
    data_exception_ignore(exception_id=DeadLetter.objects.get().exception_id, reason="the warehouse reloads nightly")

    relay_run(max_seconds=5)

    assert _versions_received(sandbox) == [2]


def test_retry_of_a_dead_letter_exception_replays_every_letter_it_stands_for(db):
    """One `dead_letter` exception covers a record's failed pushes to every system: Retry replays them all."""
    from canonical.models import DataException, System
    from stewardship.services.data_exceptions import data_exception_retry

    customer = ingest("crm", "customer", rec("001A", 0, name="Acme"))[0].golden_id
    exc = DataException.objects.create(kind="dead_letter", domain="customer", golden_id=customer, message="failed")
    letters = [
        DeadLetter.objects.create(
            system=System.objects.get(code=code), domain="customer", golden_id=customer, error="boom", exception=exc
        )  # fmt: skip
        for code in ("erp", "psa")
    ]

    data_exception_retry(exception_id=exc.pk, reason="both fixed")

    for letter in letters:
        letter.refresh_from_db()
        assert letter.replayed_at is not None
    exc.refresh_from_db()
    assert exc.status == "resolved"


@pytest.mark.django_db(transaction=True)
def test_a_slow_push_keeps_its_lease_so_no_newer_push_overtakes_it(sandbox, connect, settings):
    """Worker A pushes v1 to a slow ERP; the lease is shorter than the request. v2 arrives meanwhile and worker B
    runs: it must not take A's delivery and push v2 before A's v1 lands (the ERP would end on v1 with every
    delivery done); v2 goes after A has settled."""
    import threading
    import time

    from django.db import connection as db_connection

    from connectors.services.relay import deliveries_claim, relay_batch

    settings.MDM_DELIVERY_LEASE_SECONDS = 1
    connect(sandbox, "erp")
    ingest("crm", "customer", rec("001A", 0, name="Acme v1", website="https://acme.example"))
    ids = deliveries_claim(limit=10, token="A")
    sandbox.faults("erp", slow_ms=2500)

    def worker_a():
        try:
            relay_batch(ids=ids, token="A")
        finally:
            db_connection.close()

    a = threading.Thread(target=worker_a)
    a.start()
    time.sleep(0.3)
    ingest("crm", "customer", rec("001A", 10, name="Acme v2", website="https://acme.example"))
    time.sleep(1.0)  # A's claim-time lease has run out; its request is still in flight
    sandbox.faults("erp", slow_ms=0)
    relay_run(max_seconds=5)  # worker B
    a.join(15)
    assert not a.is_alive()
    relay_run(max_seconds=5)  # v2, after A settled v1

    assert not Delivery.objects.exclude(status=DeliveryStatus.DONE).exists()
    (remote,) = sandbox.records("erp", "customer")
    assert remote["data"]["companyName"] == "Acme v2"


def _push_in_thread(ids: list[int], token: str):
    """relay_batch(ids, token) in a thread of its own (its own database connection); returns (thread, stats)."""
    from connectors.services.relay import relay_batch

    stats: dict = {}
    thread, _ = in_thread(lambda: relay_batch(ids=ids, token=token, out=stats))
    return thread, stats


def _taken_over(pk: int, token: str) -> None:
    """Another worker has the delivery now. (SQLite's shared in-memory test database answers 'table is locked' at
    once, not after its busy timeout, while the pushing worker's lease keeper writes: tried again then.)"""
    import time

    from django.db import OperationalError

    for attempt in range(50):
        try:
            Delivery.objects.filter(pk=pk).update(lease_token=token)
            return
        except OperationalError:
            if attempt == 49:
                raise
            time.sleep(0.02)


def _wait(predicate, what: str, timeout: float = 10):
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_a_batch_is_held_one_request_ahead_so_a_dead_worker_frees_it_after_one_lease_and_one_timeout(
    sandbox, connect, settings
):
    """A worker pushing a batch of 6 to a slow ERP (one request each, longer in all than a lease and a timeout)
    holds all 6 while it pushes (those sent and not yet settled, and those still to send), but each time only for
    the claim's lease plus one request's timeout from then: had it died, another worker could take them then, not
    after a timeout for every request of the batch."""
    import time

    settings.MDM_RELAY_KICK = False  # no relay run on commit (eager Celery would push at once)
    settings.MDM_DELIVERY_LEASE_SECONDS = 1
    settings.MDM_HTTP_TIMEOUT = 1
    connect(sandbox, "erp")
    golden = customers(6)
    ids = deliveries_claim(limit=10, token="A")
    assert len(ids) == 6
    sandbox.faults("erp", slow_ms=700)  # 6 x 0.7 s: past the claim-time lease and past any one hold
    thread, stats = _push_in_thread(ids, "A")
    try:
        _wait(lambda: sandbox.calls().get("erp", 0) >= 1, "the first request")
        leases = list(Delivery.objects.filter(pk__in=ids).values_list("status", "lease_token", "lease_until"))
        looked_at = timezone.now()  # after the read: a renewal just before it is still within the bound
        assert {(status, token) for status, token, _ in leases} == {(DeliveryStatus.LEASED, "A")}
        # none beyond one lease and one timeout (1 + 1 s) from the first request (for the whole batch up front it
        # was 1 + 6 x 1 s)
        assert all(until <= looked_at + dt.timedelta(seconds=2) for _, _, until in leases)
        while sandbox.calls().get("erp", 0) < 6:
            # no other worker takes any of them meanwhile: not those still to send, nor those sent and not settled
            assert deliveries_claim(limit=10, token="B") == []
            time.sleep(0.1)
        first = Delivery.objects.get(pk=ids[0])  # sent first, settled only after the last
        assert (first.status, first.lease_token) == (DeliveryStatus.LEASED, "A")
        assert first.lease_until > timezone.now()
    finally:
        sandbox.faults("erp", slow_ms=0)
        thread.join(30)
    assert not thread.is_alive()
    assert stats["erp"].delivered == 6 and stats["erp"].lost == 0
    assert_delivered_once(sandbox, system="erp", obj="customer", domain="customer", golden_ids=golden)


@pytest.mark.django_db(transaction=True)
def test_a_delivery_no_longer_leased_to_the_worker_is_left_out_of_its_next_request(sandbox, connect, settings):
    """Mid-push, a delivery of the batch stops being this worker's (as if its lease had run out and another worker
    took it): it is not sent, and the worker counts it lost without settling it; the rest are delivered."""
    settings.MDM_RELAY_KICK = False  # no relay run on commit (eager Celery would push at once)
    settings.MDM_DELIVERY_LEASE_SECONDS = 0.01  # so the leases are written again before every request
    connect(sandbox, "erp")
    golden = customers(3)
    ids = deliveries_claim(limit=10, token="A")
    sandbox.faults("erp", slow_ms=700)
    thread, stats = _push_in_thread(ids, "A")
    try:
        _wait(lambda: sandbox.calls().get("erp", 0) >= 1, "the first request")
        _taken_over(ids[2], "B")  # the third, while the first is in flight
    finally:
        sandbox.faults("erp", slow_ms=0)
        thread.join(30)
    assert not thread.is_alive()
    assert (stats["erp"].delivered, stats["erp"].lost, stats["erp"].retried) == (2, 1, 0)
    taken = Delivery.objects.get(pk=ids[2])
    assert (taken.status, taken.lease_token, taken.attempts) == (DeliveryStatus.LEASED, "B", 1)
    assert sorted(r["ext_id"] for r in sandbox.records("erp", "customer")) == sorted(str(g) for g in golden[:2])


@pytest.mark.django_db(transaction=True)
def test_a_composite_request_sends_only_the_records_still_held(sandbox, connect, settings):
    """The CRM takes up to 200 records a request: the items whose lease is no longer the worker's are left out of
    the request, each with a result saying why, and the others are sent together."""
    from connectors.models import Connection
    from connectors.registry import connector_for
    from connectors.services.relay import _LeaseHold, push_item

    settings.MDM_RELAY_KICK = False  # no relay run on commit (eager Celery would push at once)
    connect(sandbox, "crm")
    ingest("erp", "customer", rec("C1", name="Acme", website="https://acme.example"))
    results = ingest("erp", "contract", *[rec(f"CN-{i}", contract_number=f"CN-{i}", customer="C1", title=f"SOW {i}")
                                          for i in range(3)])  # fmt: skip
    ids = deliveries_claim(limit=10, token="A", system="crm")
    assert len(ids) == 3
    Delivery.objects.filter(pk=ids[1]).update(lease_token="B")
    connector = connector_for(Connection.objects.get(system_id="crm"))
    connector.request_hold = _LeaseHold(ids, "A")
    deliveries = Delivery.objects.filter(pk__in=ids).order_by("id")
    items = [push_item(d, covers=connector.covers("contract")) for d in deliveries]
    answers = {r.delivery_id: r for r in connector.push(items)}
    connector.close()
    assert answers[ids[0]].ok and answers[ids[2]].ok
    assert not answers[ids[1]].ok and "lease" in str(answers[ids[1]].error)
    assert answers[ids[1]].error.permanent is False
    sent = sorted(r["ext_id"] for r in sandbox.records("crm", "Contract"))
    assert sent == sorted(str(results[i].golden_id) for i in (0, 2))
    assert sandbox.calls().get("crm") == 1, "the two held records went in one composite request"


@pytest.mark.postgres  # the match lock is PostgreSQL's advisory lock (SQLite serialises whole transactions)
@pytest.mark.django_db(transaction=True)
def test_a_batch_pushed_and_waiting_to_be_settled_stays_held_however_long_the_wait(sandbox, connect, settings):
    """Settling takes the match lock, which a pull's page may hold for longer than the lease. Meanwhile the records
    pushed and not yet settled stay the pushing worker's (a thread keeps their leases): no other worker claims them
    and pushes them again."""
    import threading
    import time

    from django.db import transaction

    from canonical.services.ingest import match_lock

    settings.MDM_RELAY_KICK = False
    settings.MDM_DELIVERY_LEASE_SECONDS = 1
    settings.MDM_HTTP_TIMEOUT = 1
    connect(sandbox, "erp")
    golden = customers(2)
    ids = deliveries_claim(limit=10, token="A")
    locked, release = threading.Event(), threading.Event()

    def a_page_holding_the_match_lock():
        with transaction.atomic():
            match_lock("customer")
            locked.set()
            release.wait(30)

    page, _ = in_thread(a_page_holding_the_match_lock)
    try:
        assert locked.wait(10)
        thread, stats = _push_in_thread(ids, "A")
        _wait(lambda: sandbox.calls().get("erp", 0) >= 2, "both records pushed")
        time.sleep(3)  # past one lease and one timeout (1 + 1 s) since the last hold written by a request
        assert deliveries_claim(limit=10, token="B") == [], "pushed, waiting to be settled, and still A's"
    finally:
        release.set()
        page.join(30)
    thread.join(30)
    assert not thread.is_alive()
    assert (stats["erp"].delivered, stats["erp"].lost) == (2, 0)
    assert sandbox.calls().get("erp") == 2, "each record pushed once"
    assert_delivered_once(sandbox, system="erp", obj="customer", domain="customer", golden_ids=golden)
