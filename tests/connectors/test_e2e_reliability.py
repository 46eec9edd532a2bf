"""End to end: a real Celery worker (and beat) in their own processes, Redis, PostgreSQL, and the sandbox
systems over HTTP. Each test breaks something, then ends with "every record delivered exactly once,
nothing lost"."""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import subprocess
import time

import pytest
from django.utils import timezone

from canonical.models import ChangeEvent, CrossReference, Customer, DataException, SourceRecord
from connectors.models import DeadLetter, Delivery, DeliveryStatus

from .conftest import Sandbox, assert_delivered_once, free_port, ingest, rec, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def customers(n: int, *, prefix: str = "001", seconds: float = 0) -> list[str]:
    results = ingest("crm", "customer", *[rec(f"{prefix}{i:04d}", seconds, name=f"Customer {prefix}{i}",
                                              website=f"https://c{prefix}{i}.example") for i in range(n)])  # fmt: skip
    return [r.golden_id for r in results]


def all_done(system: str) -> bool:
    return not Delivery.objects.filter(system_id=system).exclude(status=DeliveryStatus.DONE).exists()


def test_kill_9_a_worker_mid_push_loses_and_duplicates_nothing(sandbox, connect, workers):
    connect(sandbox, "erp")
    first = workers(beat=True)  # beat claims what arrives later, whether or not a kick reaches the worker
    golden = customers(3)
    wait_for(lambda: Delivery.objects.filter(status=DeliveryStatus.DONE).count() >= 3, timeout=60,
             what="the first worker to deliver a few")  # fmt: skip
    # Then more, pushed slowly, and the worker killed while it holds their lease. (Killing it as soon as a few
    # were done raced: a worker that had claimed the whole lot in one batch settled them all at once.)
    sandbox.faults("erp", slow_ms=3000)
    golden += customers(27, prefix="002")
    wait_for(lambda: Delivery.objects.filter(status=DeliveryStatus.LEASED).exists(), timeout=60,
             what="the worker to lease the next deliveries")  # fmt: skip
    first.kill9()
    killed = timezone.now()
    held = Delivery.objects.filter(status=DeliveryStatus.LEASED)
    assert held.exists(), "the worker died holding a lease"
    # held one request ahead (lease 3 s + HTTP timeout 3 s), not for a timeout per request of its whole batch: the
    # next worker takes them over within seconds (with all 27 in one batch it was 84 s)
    assert max(held.values_list("lease_until", flat=True)) <= killed + dt.timedelta(seconds=6)
    sandbox.faults("erp", slow_ms=0)
    workers(beat=True)
    wait_for(lambda: all_done("erp"), timeout=90, what="every delivery to be done after the restart")
    assert_delivered_once(sandbox, system="erp", obj="customer", domain="customer", golden_ids=golden)


def test_redis_restarted_with_tasks_queued_loses_nothing(sandbox, connect, workers, tmp_path, settings):
    redis_server = shutil.which("redis-server")
    port = free_port()
    cmd = [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
           "--dir", str(tmp_path)]  # fmt: skip
    own = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    broker = f"redis://127.0.0.1:{port}/0"
    try:
        wait_for(lambda: _listening(port), timeout=10, what="our own redis-server")
        settings.MDM_RELAY_KICK = False  # the test process must not queue to the shared Redis
        connect(sandbox, "erp")
        golden = customers(20)
        from celery import Celery

        app = Celery(broker=broker)
        for _ in range(5):
            app.send_task("connectors.relay_run")
        import redis

        assert redis.Redis.from_url(broker).llen("celery") == 5, "tasks are queued, no worker has them yet"
        own.kill()
        own.wait(10)
        own = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: _listening(port), timeout=10, what="redis-server to come back")
        assert redis.Redis.from_url(broker).llen("celery") == 0, "the restart lost the queued tasks"
        sandbox.faults("erp", slow_ms=100)
        workers(beat=True, broker_url=broker)
        wait_for(lambda: Delivery.objects.filter(status=DeliveryStatus.DONE).exists(), timeout=60, what="a delivery")
        own.kill()  # and again while the worker is busy
        own.wait(10)
        time.sleep(1)
        own = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sandbox.faults("erp", slow_ms=0)
        wait_for(lambda: all_done("erp"), timeout=90, what="every delivery after the Redis restarts")
        assert_delivered_once(sandbox, system="erp", obj="customer", domain="customer", golden_ids=golden)
    finally:
        own.kill()
        own.wait(10)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_429_storm_is_ridden_out_without_dead_letters(sandbox, connect, workers):
    connect(sandbox, "erp")
    sandbox.faults("erp", rate_limit_next=8, retry_after=1)
    workers(beat=True)
    golden = customers(20)
    wait_for(lambda: all_done("erp"), timeout=90, what="every delivery after the storm")
    assert_delivered_once(sandbox, system="erp", obj="customer", domain="customer", golden_ids=golden)
    assert sandbox.admin("GET", "faults")["faults"]["erp"]["rate_limit_next"] == 0, "the storm did happen"
    assert max(Delivery.objects.values_list("attempts", flat=True)) <= 2, "429s do not use up attempts"


def test_a_system_down_for_a_while_then_back_gets_everything_once(connect, workers, tmp_path):
    box = Sandbox(tmp_path / "store").start()
    try:
        connect(box, "erp")
        box.put("erp", "customer", {"companyName": "already there"})
        box.stop()
        workers(beat=True)
        golden = customers(15)
        wait_for(lambda: Delivery.objects.filter(attempts__gte=2).count() >= 5, timeout=60,
                 what="pushes to fail against the stopped system")  # fmt: skip
        assert not Delivery.objects.filter(status=DeliveryStatus.DONE).exists()
        box.start()  # same port, same store
        wait_for(lambda: all_done("erp"), timeout=90, what="every delivery once the system is back")
        assert len(box.records("erp", "customer")) == 16
        box_records = [r for r in box.records("erp", "customer") if r["ext_id"]]
        assert sorted(r["ext_id"] for r in box_records) == sorted(golden)
        assert CrossReference.objects.filter(system_id="erp").count() == 15, "one per pushed customer"
        assert not DeadLetter.objects.exists()
    finally:
        box.stop()


def test_a_composite_call_that_partly_fails_retries_the_transient_and_dead_letters_the_permanent(
    sandbox, connect, workers
):
    connect(sandbox, "crm")
    ingest("erp", "customer", rec("C1", name="Acme", website="https://acme.example"))
    contracts = ingest("erp", "contract", *[rec(f"CN-{i}", contract_number=f"CN-{i}", customer="C1", title=f"SOW {i}")
                                            for i in range(8)])  # fmt: skip
    golden = [r.golden_id for r in contracts]
    sandbox.faults("crm", item_fail={golden[2]: {"code": "UNABLE_TO_LOCK_ROW", "times": 1},
                                     golden[5]: {"code": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "times": None}})  # fmt: skip
    workers(beat=True)
    wait_for(lambda: Delivery.objects.filter(status=DeliveryStatus.DONE).count() == 7, timeout=60,
             what="the seven good contracts")  # fmt: skip
    dead = Delivery.objects.get(status=DeliveryStatus.DEAD)
    assert str(dead.golden_id) == golden[5] and "FIELD_CUSTOM_VALIDATION_EXCEPTION" in dead.last_error
    assert Delivery.objects.get(golden_id=golden[2]).attempts == 2
    exc = DataException.objects.get(kind="dead_letter", status="open")
    sandbox.faults("crm", item_fail={})
    from connectors.services.dead_letters import dead_letter_replay_for_exception

    dead_letter_replay_for_exception(exception_id=exc.pk)
    wait_for(lambda: all_done("crm"), timeout=60, what="the replayed contract")
    assert_delivered_once(sandbox, system="crm", obj="Contract", domain="contract", golden_ids=golden)


def test_500_records_sharing_one_timestamp_across_pages_are_each_pulled_once(sandbox, connect, workers):
    connect(sandbox, "crm", options={"crm": {"batch_size": 200}})
    ts = "2026-03-01T08:00:00.000Z"
    rows = sandbox.put_many([{"system": "crm", "object": "Account", "modified": ts,
                              "data": {"Name": f"Shared {i}", "Website": f"https://shared{i}.example"}}
                             for i in range(500)])  # fmt: skip
    sandbox.faults("crm", locator_expire_next=1)
    workers(beat=True, extra_env={"MDM_PULL_INTERVAL": "1"})
    wait_for(lambda: SourceRecord.objects.filter(system_id="crm").count() == 500, timeout=120, what="500 accounts")
    time.sleep(2)  # beat pulls again: the overlap rereads the rows and changes nothing
    assert sorted(SourceRecord.objects.values_list("source_id", flat=True)) == sorted(r["id"] for r in rows)
    assert Customer.objects.count() == 500
    assert ChangeEvent.objects.filter(type="golden.created").count() == 500
    assert ChangeEvent.objects.count() == 500
