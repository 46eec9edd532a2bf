"""BatchMatch's read-ahead (prefetch_ahead, then prefetch_resume), as the pipelined matcher uses it: the next
window's key rows are asked for while the window before is matched. It must decide what FuzzyMatcher decides, read
each key once, and leave match() nothing to read about keys."""

from __future__ import annotations

from concurrent.futures import Future

import pytest

from canonical.matching.batch import BatchMatch, key_rows_bulk

from .conftest import ingest, rec
from .test_batch_common_keys import _same, _spy_key_reads

pytestmark = pytest.mark.django_db


def _hub() -> None:
    ingest(
        "crm",
        "customer",
        rec("c1", name="Harbour Logistics Ltd", website="harbour-logistics.example", country="GB", city="Leeds"),
        rec("c2", name="Meridian Analytics GmbH", website="meridian.example", country="DE", city="Berlin"),
        rec("c3", name="Northwind Traders", website="northwind.example", country="US", city="Boston"),
    )


PROBES = [
    {"name": "Harbour Logistics Limited", "website": "www.harbour-logistics.example", "country": "GB"},
    {"name": "Meridian Analytics", "website": "meridian.example", "country": "DE", "city": "Berlin"},
    {"name": "Quite Unrelated Bakery", "website": "bakery.example", "country": "FR"},
]


def test_a_window_read_ahead_decides_as_fuzzy_and_match_reads_no_keys_itself(fuzzy, monkeypatch):
    _hub()
    asked_ahead: list = []

    def read(domain, keys):  # the reader: here in this thread (the test's rows are not committed)
        asked_ahead.extend(keys)
        return key_rows_bulk(domain, keys)

    batch = BatchMatch(domain="customer", matcher=fuzzy)
    ahead = batch.prefetch_ahead(PROBES, read)
    wanted = list(dict.fromkeys(key for probe in PROBES for key in batch.keys(probe)))
    assert asked_ahead == wanted  # every key of the window, once, in the records' order
    asked_later = _spy_key_reads(monkeypatch)
    batch.prefetch_resume(ahead)
    outcomes = [batch.match(values=probe)[0] for probe in PROBES]
    assert asked_later == []  # what was read ahead is what match() uses
    for probe, outcome in zip(PROBES, outcomes, strict=True):
        _same(outcome, fuzzy.search(domain="customer", values=probe))
    assert outcomes[0].decision == "link" and outcomes[2].decision == "new"


def test_keys_read_before_the_window_resumes_are_kept_as_read_and_not_asked_for_ahead(fuzzy, monkeypatch):
    _hub()
    batch = BatchMatch(domain="customer", matcher=fuzzy)
    batch.prefetch(PROBES[:1])  # the window before: its keys are read
    first_keys = set(batch.keys(PROBES[0]))
    asked_ahead: list = []

    def read(domain, keys):
        asked_ahead.extend(keys)
        future: Future = Future()  # as a reader thread hands it back
        future.set_result(key_rows_bulk(domain, keys))
        return future

    ahead = batch.prefetch_ahead([PROBES[0], PROBES[1]], read)
    assert not first_keys & set(asked_ahead)  # known already: not read again
    rows_before = {key: list(batch._db_rows[key] or ()) for key in first_keys}
    batch.match(values=PROBES[0])  # the window before is matched meanwhile
    batch.prefetch_resume(ahead)
    assert {key: list(batch._db_rows[key] or ()) for key in first_keys} == rows_before  # not doubled
    asked_later = _spy_key_reads(monkeypatch)
    _same(batch.match(values=PROBES[1])[0], fuzzy.search(domain="customer", values=PROBES[1]))
    assert asked_later == []


def test_keys_forgotten_between_ahead_and_resume_are_read_again(fuzzy, monkeypatch):
    _hub()
    batch = BatchMatch(domain="customer", matcher=fuzzy)
    batch.prefetch(PROBES[:1])
    ahead = batch.prefetch_ahead(PROBES, lambda domain, keys: key_rows_bulk(domain, keys))
    batch.invalidate()  # the matcher re-reads the database (MDM_PIPELINE_FORGET_EVERY) before the window resumes
    asked_later = _spy_key_reads(monkeypatch)
    batch.prefetch_resume(ahead)
    assert set(asked_later) == set(batch.keys(PROBES[0]))  # read ahead they were not: known then, forgotten since
    for probe in PROBES:
        _same(batch.match(values=probe)[0], fuzzy.search(domain="customer", values=probe))
