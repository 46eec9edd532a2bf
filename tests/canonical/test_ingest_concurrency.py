"""Concurrent deliveries of the same new record (a webhook sent twice at once): one wins, none fails."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from canonical.domains import DOMAINS
from canonical.models import ChangeEvent, Customer, SourceRecord
from tests.factories import ingest, record

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_the_same_new_record_delivered_concurrently_is_created_once():
    payload = record("C1", 0, name="Acme", website="acme.example.com")
    barrier = threading.Barrier(3)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def deliver():
        try:
            barrier.wait()
            (result,) = ingest("crm", "customer", payload)
            outcomes.append(result.outcome)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert errors == []
    assert sorted(outcomes) == ["created", "unchanged", "unchanged"]
    assert SourceRecord.objects.count() == 1
    assert Customer.objects.count() == 1 and ChangeEvent.objects.count() == 1


def _bulk_ingest(system: str, domain: str, *records):
    from canonical.audit import Channel, audit_context
    from canonical.domains import get_domain
    from canonical.services.bulk import source_records_ingest_bulk
    from canonical.services.ingest import envelope_parse

    spec = get_domain(domain)
    with audit_context(actor="pytest", channel=Channel.JOB):
        return source_records_ingest_bulk(
            system=system, domain=domain, envelopes=[envelope_parse(r, spec=spec) for r in records]
        )


def _waiting_for_a_match_lock() -> bool:
    """Whether some session waits for one of the hub's match locks (an advisory lock of its class, not granted)."""
    from canonical.services.ingest import _MATCH_LOCK_CLASS

    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = %s",
            [_MATCH_LOCK_CLASS],
        )
        return cur.fetchone()[0] > 0


@pytest.mark.parametrize("first_path", ["record by record", "bulk"])
def test_duplicates_from_two_systems_ingested_at_once_make_one_golden_record(first_path):
    """CRM and ERP send the same client at the same moment. The first ingest is held open right after its matcher
    decided "new" until the second has either decided too or is seen waiting for a match lock: without the lock
    the second cannot see the first's uncommitted golden record and makes a second one; with it, it waits for the
    first to commit and links."""
    from canonical.matching.signals import match_decided

    first_decided, second_decided = threading.Event(), threading.Event()
    seen_waiting: list[bool] = []
    errors: list[BaseException] = []
    results: dict[str, list] = {}

    def on_decided(sender, **kwargs):
        name = threading.current_thread().name
        if name == "first":
            first_decided.set()
            deadline = time.monotonic() + 30
            while not second_decided.is_set() and time.monotonic() < deadline:
                if _waiting_for_a_match_lock():
                    seen_waiting.append(True)
                    return
                time.sleep(0.02)
        elif name == "second":
            second_decided.set()

    def run(name, fn):
        try:
            if name == "second":
                assert first_decided.wait(timeout=30), "the first ingest never matched"
            results[name] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    first_fn = _bulk_ingest if first_path == "bulk" else ingest
    crm = record("C1", 0, name="Acme Consulting Ltd", website="https://www.acme-consulting.example.com", country="GB")
    erp = record("E1", 1, name="ACME CONSULTING LIMITED", website="acme-consulting.example.com", country="GB")
    match_decided.connect(on_decided)
    try:
        threads = [
            threading.Thread(name="first", target=run, args=("first", lambda: first_fn("crm", "customer", crm))),
            threading.Thread(name="second", target=run, args=("second", lambda: ingest("erp", "customer", erp))),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
            assert not t.is_alive(), f"the {t.name} ingest did not finish"
    finally:
        match_decided.disconnect(on_decided)

    assert errors == []
    assert seen_waiting == [True], "the second ingest went on while the first was open"
    assert [r.outcome for r in results["first"]] == ["created"]
    assert [r.outcome for r in results["second"]] == ["linked"]
    assert Customer.objects.count() == 1
    assert set(SourceRecord.objects.values_list("golden_id", flat=True)) == {Customer.objects.get().pk}


def test_match_locks_cover_the_domains_a_reference_can_release_in_one_fixed_order():
    """Ingesting a domain may process held records of every domain that refers to it, in the same transaction:
    its locks cover them, taken in one order every domain's set follows (a subset's order is the same)."""
    from canonical.services.ingest import _match_lock_id, match_lock_domains

    assert set(match_lock_domains("customer")) == {"customer", "contract", "project", "rate_card"}
    assert set(match_lock_domains("contract")) == {"contract", "project"}
    assert set(match_lock_domains("project")) == {"project"}
    assert set(match_lock_domains("resource")) == {"resource", "project"}
    assert set(match_lock_domains("legal_entity")) == set(DOMAINS)
    for domain in DOMAINS:
        ids = [_match_lock_id(d) for d in match_lock_domains(domain)]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        for referrer in match_lock_domains(domain):
            assert set(match_lock_domains(referrer)) <= set(match_lock_domains(domain))
