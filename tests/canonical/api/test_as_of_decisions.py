"""`?as_of=` at the instants a steward's decision wrote: every history row of one merge or unmerge carries one time,
so a read as of any instant sees all of the decision or none of it (found by a review of audit and as-of reads)."""

from __future__ import annotations

import datetime as dt

import pytest

from canonical.models import CrossReference, Customer
from stewardship.services.merge import golden_record_merge, golden_record_unmerge

from .conftest import ingest, rec

pytestmark = pytest.mark.django_db


def _merged() -> tuple:
    a = ingest("crm", "customer", rec("A", 1, name="Alpha Widgets", country="DE"))[0].golden_id
    b = ingest("erp", "customer", rec("B", 1, name="Zeta Bricks", country="FR", city="Paris"))[0].golden_id
    golden_record_merge(domain="customer", survivor_id=a, other_ids=[b], reason="same", actor="t", channel="steward")
    return a, b


def test_every_history_row_of_a_merge_carries_one_time():
    a, b = _merged()
    merged_at = Customer.history.get(id=b, status="merged").history_date
    assert Customer.history.filter(id=a).order_by("-history_id").first().history_date == merged_at
    assert CrossReference.history.get(source_id="B", history_type="~").history_date == merged_at


def test_as_of_the_instant_of_a_merge_shows_the_merge_whole(reader):
    a, b = _merged()
    at = Customer.history.get(id=b, status="merged").history_date

    body = reader.get(f"/api/v1/customers/{b}/", {"as_of": at.isoformat()}).json()

    assert body["id"] == str(a) and body["city"] == "Paris"  # the survivor, with what the merge brought
    assert {"system": "erp", "source_id": "B"} in body["xrefs"]
    before = reader.get(f"/api/v1/customers/{b}/", {"as_of": (at - dt.timedelta(microseconds=1)).isoformat()}).json()
    assert (before["id"], before["status"], before["city"]) == (str(b), "active", "Paris")
    assert before["xrefs"] == [{"system": "erp", "source_id": "B"}]


def test_as_of_the_instant_of_an_unmerge_shows_it_whole(reader):
    from canonical.models import SourceRecord

    a, b = _merged()
    golden_record_unmerge(
        domain="customer", source_record_id=SourceRecord.objects.get(source_id="B").pk, reason="no", actor="t",
        channel="steward",
    )  # fmt: skip
    at = Customer.history.filter(id=b).order_by("-history_id").first().history_date

    body = reader.get(f"/api/v1/customers/{b}/", {"as_of": at.isoformat()}).json()

    assert (body["id"], body["status"], body["city"]) == (str(b), "active", "Paris")
    assert body["xrefs"] == [{"system": "erp", "source_id": "B"}]
    survivor = reader.get(f"/api/v1/customers/{a}/", {"as_of": at.isoformat()}).json()
    assert survivor["city"] is None and {"system": "erp", "source_id": "B"} not in survivor["xrefs"]


def test_a_decisions_time_is_taken_after_it_waited_for_its_locks(monkeypatch):
    """A merge that waits for an ingest holding the match locks must not date its rows before that ingest's: the
    one time of a decision is taken when it writes its first history row, after its locks."""
    import time

    from django.utils import timezone

    from stewardship.services import merge as merge_service

    a = ingest("crm", "customer", rec("A", 1, name="Alpha Widgets", country="DE"))[0].golden_id
    b = ingest("erp", "customer", rec("B", 1, name="Zeta Bricks", country="FR"))[0].golden_id
    real, waited = merge_service.match_lock, []

    def slow_lock(domain):
        time.sleep(0.2)  # stands for the wait behind an ingest batch
        waited.append(timezone.now())
        return real(domain)

    monkeypatch.setattr(merge_service, "match_lock", slow_lock)
    golden_record_merge(domain="customer", survivor_id=a, other_ids=[b], reason="same", actor="t", channel="steward")

    merged_at = Customer.history.get(id=b, status="merged").history_date
    assert merged_at >= waited[0]
