"""Concurrent deliveries of the same new record (a webhook sent twice at once): one wins, none fails."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

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


@pytest.mark.parametrize("first_path", ["record by record", "bulk"])
def test_duplicates_from_two_systems_ingested_at_once_make_one_golden_record(first_path):
    """CRM and ERP send the same client at the same moment. The first ingest is held open right after its matcher
    decided "new" until the second has decided too (at most 3 s): without the match lock the second cannot see the
    first's uncommitted golden record and makes a second one; with it, it waits for the first to commit and links."""
    from canonical.matching.signals import match_decided

    first_decided, second_decided = threading.Event(), threading.Event()
    errors: list[BaseException] = []
    results: dict[str, list] = {}

    def on_decided(sender, **kwargs):
        name = threading.current_thread().name
        if name == "first":
            first_decided.set()
            second_decided.wait(timeout=3)
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
    finally:
        match_decided.disconnect(on_decided)

    assert errors == []
    assert [r.outcome for r in results["first"]] == ["created"]
    assert [r.outcome for r in results["second"]] == ["linked"]
    assert Customer.objects.count() == 1
    assert set(SourceRecord.objects.values_list("golden_id", flat=True)) == {Customer.objects.get().pk}
