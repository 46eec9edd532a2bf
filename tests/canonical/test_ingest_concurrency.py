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
