"""A push settling while the same system's pull ingests the record it created there (ERP answers the push with
id E1 while ERP's pull brings E1 in): the ingest decides E1 has no cross-reference, then writes one; the push's
cross-reference for E1, stored in between, made that write fail on the unique key and the pull's page roll back.
Both now take the domain's match locks, so one waits for the other."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from canonical.audit import Channel, audit_context
from canonical.models import CrossReference, Customer, SourceRecord
from connectors.services.relay import xref_store
from tests.canonical.test_ingest_concurrency import _waiting_for_a_match_lock
from tests.factories import ingest, record

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_push_settled_while_the_pull_ingests_its_record_waits_and_leaves_the_ingests_link():
    from canonical.matching.signals import match_decided

    (pushed,) = ingest("crm", "customer", record("C9", 0, name="Initech Holdings", country="US"))
    golden_pushed = pushed.golden_id
    decided, stored = threading.Event(), threading.Event()
    seen_waiting: list[bool] = []
    errors: list[BaseException] = []
    results: dict[str, object] = {}

    def hold_the_ingest(sender, **kwargs):
        if threading.current_thread().name != "pull":
            return
        decided.set()
        deadline = time.monotonic() + 30
        while not stored.is_set() and time.monotonic() < deadline:
            if _waiting_for_a_match_lock():
                seen_waiting.append(True)
                return
            time.sleep(0.02)

    def pull():
        try:
            results["pull"] = ingest("erp", "customer", record("E1", 1, name="Globex Partners", country="FR"))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    def settle():
        try:
            assert decided.wait(timeout=30), "the pull never matched"
            with audit_context(actor="connector:erp", channel=Channel.CONNECTOR), transaction.atomic():
                results["push"] = xref_store(system="erp", domain="customer", remote_id="E1", golden_id=golden_pushed)
            stored.set()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    match_decided.connect(hold_the_ingest)
    try:
        threads = [threading.Thread(name="pull", target=pull), threading.Thread(name="push", target=settle)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
            assert not t.is_alive(), f"the {t.name} did not finish"
    finally:
        match_decided.disconnect(hold_the_ingest)

    assert errors == []
    assert seen_waiting == [True], "the push's cross-reference was stored while the pull was open"
    assert [r.outcome for r in results["pull"]] == ["created"]
    e1 = SourceRecord.objects.get(system_id="erp", source_id="E1")
    (xref,) = CrossReference.objects.filter(system_id="erp", domain="customer", source_id="E1")
    assert xref.source_record_id == e1.pk and xref.golden_id == e1.golden_id != golden_pushed
    assert results["push"].pk == xref.pk
    assert Customer.objects.count() == 2
