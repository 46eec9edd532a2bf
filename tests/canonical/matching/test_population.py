"""The population term frequencies divide by (live applied source records of the domain) follows a load that
crosses the cache threshold, on the record-by-record and the bulk path alike, and both still leave the same state.

Thresholds are patched small so that the scenario of test_ingest_bulk (a few hundred customers, with duplicates,
deletes, held and invalid records) crosses them: above _POPULATION_CACHE_FROM the count is cached, and from
MIN_TF_POPULATION on it weighs every exact comparison, so a stale count would change decisions."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from canonical.matching import batch as batch_module
from canonical.matching import fuzzy, scoring
from canonical.matching.batch import BatchMatch
from canonical.models import SourceRecord, SourceStatus
from canonical.services.bulk import source_records_ingest_bulk
from canonical.services.ingest import source_records_ingest
from tests.canonical.test_ingest_bulk import assert_same_state, run, scenario

pytestmark = pytest.mark.django_db

CACHE_FROM = 60


def _live(domain: str = "customer") -> int:
    return SourceRecord.objects.filter(domain=domain, status=SourceStatus.APPLIED, deleted=False).count()


@pytest.fixture
def small_thresholds(monkeypatch):
    monkeypatch.setattr(fuzzy, "_POPULATION_CACHE_FROM", CACHE_FROM)
    monkeypatch.setattr(scoring, "MIN_TF_POPULATION", 20)
    monkeypatch.setattr(batch_module, "MIN_TF_POPULATION", 20)
    yield
    fuzzy._population_memo.clear()  # counts of these small patched hubs mean nothing to later tests


@pytest.fixture
def reads(monkeypatch):
    """Every population the matcher reads, with what the database holds then: [(read, live), ...] by path.
    The bulk path's live count includes the records its chunk accepted and has not written yet (the overlay),
    as record-by-record ingest would have written them by then."""
    seen: dict[str, list[tuple[int, int]]] = {"fuzzy": [], "batch": []}
    read_fuzzy, read_batch = fuzzy._population, BatchMatch._population

    def spy_fuzzy(domain: str) -> int:
        value = read_fuzzy(domain)
        seen["fuzzy"].append((value, _live(domain)))
        return value

    def spy_batch(self: BatchMatch) -> int:
        value = read_batch(self)
        seen["batch"].append((value, _live(self.domain) + self._ov_applied))
        return value

    monkeypatch.setattr(fuzzy, "_population", spy_fuzzy)
    monkeypatch.setattr(BatchMatch, "_population", spy_batch)
    return seen


def _with_final_read(batches, ends: list[tuple[int, int]]):
    """The scenario, then one more step: the population a match would read now, and the live count."""
    read = fuzzy._population
    return [*batches, lambda: ends.append((read("customer"), _live()))]


def test_the_population_follows_a_load_across_the_cache_threshold_on_both_paths(small_thresholds, reads):
    ends: list[tuple[int, int]] = []
    batches = _with_final_read(scenario(), ends)
    _, state_a = run(batches, source_records_ingest)
    by_record = list(reads["fuzzy"])
    reads["fuzzy"].clear()
    _, state_b = run(batches, source_records_ingest_bulk)

    assert max(live for _, live in by_record) > 3 * CACHE_FROM  # the load crosses the threshold, well past it
    assert sum(1 for value, _ in by_record if value >= CACHE_FROM) > 50  # and matches read a cached count
    assert [value for value, _ in by_record] == [live for _, live in by_record]
    assert reads["batch"] and [value for value, _ in reads["batch"]] == [live for _, live in reads["batch"]]
    assert [value for value, _ in reads["fuzzy"]] == [live for _, live in reads["fuzzy"]]  # the bulk's fallbacks
    assert ends[0] == ends[1] and ends[0][0] == ends[0][1] > 3 * CACHE_FROM
    assert_same_state(state_a, state_b)


def test_bulk_ingest_crossing_the_threshold_in_small_batches_leaves_the_same_state(small_thresholds):
    batches = scenario(seed=11, companies=90)
    results_a, state_a = run(batches, source_records_ingest, batch_size=13)
    results_b, state_b = run(batches, source_records_ingest_bulk, batch_size=13)
    assert [r["outcome"] for _, _, r in results_a] == [r["outcome"] for _, _, r in results_b]
    assert_same_state(state_a, state_b)


@pytest.mark.django_db(transaction=True)
def test_population_add_counts_for_this_transaction_at_once_and_for_everyone_on_commit(small_thresholds):
    """A transaction's changes count in its own reads at once (as its uncommitted rows do in its own COUNT), move
    the shared count when it commits, and vanish with a rollback — of the transaction or of the savepoint they
    were made in."""
    from django.db import transaction

    cache.clear()
    fuzzy._population_memo.clear()
    key = fuzzy.population_cache_key("customer")
    fuzzy.population_add("customer", 5)  # nothing cached (a small hub): nothing made
    assert cache.get(key) is None and key not in fuzzy._population_memo

    cache.set(key, CACHE_FROM + 10, 300)
    assert fuzzy._population("customer") == CACHE_FROM + 10  # read, and remembered: the hub is big
    with transaction.atomic():
        fuzzy.population_add("customer", 3)
        assert fuzzy._population("customer") == CACHE_FROM + 13  # this transaction's own
        assert cache.get(key) == CACHE_FROM + 10  # other processes: committed only
        try:
            with transaction.atomic():
                fuzzy.population_add("customer", 4)
                assert fuzzy._population("customer") == CACHE_FROM + 17
                raise RuntimeError
        except RuntimeError:
            pass
        assert fuzzy._population("customer") == CACHE_FROM + 13  # the savepoint's change went with its rows
    assert cache.get(key) == CACHE_FROM + 13 and fuzzy._population("customer") == CACHE_FROM + 13

    with pytest.raises(RuntimeError), transaction.atomic():
        fuzzy.population_add("customer", 50)
        raise RuntimeError
    assert cache.get(key) == CACHE_FROM + 13 and fuzzy._population("customer") == CACHE_FROM + 13
    with transaction.atomic():  # a new transaction does not inherit what a rolled-back one counted
        assert fuzzy._population("customer") == CACHE_FROM + 13

    fuzzy.population_add("customer", -14)  # committed at once (autocommit): below the threshold, counted exactly
    assert cache.get(key) is None and key not in fuzzy._population_memo
    assert fuzzy._population("customer") == _live() == 0

    cache.set(key, 3, 300)  # a count no writer of ours leaves (a key INCRBY made after it expired): not trusted
    assert fuzzy._population("customer") == 0
    fuzzy.population_forget("customer")
    assert cache.get(key) is None


def _step(batch, ingest_fn) -> None:
    from canonical.domains import get_domain
    from canonical.services.ingest import envelope_parse

    if callable(batch):
        batch()
        return
    system, domain, rows = batch
    spec = get_domain(domain)
    ingest_fn(system=system, domain=domain, envelopes=[envelope_parse(r, spec=spec) for r in rows])


def test_a_batch_that_fails_leaves_the_population_it_found_on_both_paths(small_thresholds, monkeypatch):
    """A batch that raises is rolled back with whatever it counted: the next read is the live count, not the
    count plus the failed batch's records (which every retry would add again)."""
    from django.db import transaction

    from canonical.services import bulk, ingest

    batches = scenario(seed=11, companies=90)
    half = len(batches) // 2
    system, domain, rows = next(b for b in batches if not callable(b) and b[1] == "customer" and len(b[2]) >= 20)
    new_rows = [{**row, "source_id": f"NEW-{row['source_id']}"} for row in rows]  # all new to the hub
    for path, ingest_fn, module, name, fail_at in (
        ("record by record", source_records_ingest, ingest, "_xref_link", 10),  # its 10th record
        ("bulk", source_records_ingest_bulk, bulk, "outbox_on_events", 1),  # its write, after the source records
    ):
        cache.clear()
        fuzzy._population_memo.clear()
        with transaction.atomic():
            for step in batches[:half]:
                _step(step, ingest_fn)
            before = _live()
            assert before >= CACHE_FROM and fuzzy._population("customer") == before  # a cached count, read
            original, calls = getattr(module, name), []

            def failing(*args, _original=original, _calls=calls, _fail_at=fail_at, **kwargs):
                _calls.append(1)
                if len(_calls) >= _fail_at:
                    raise RuntimeError("the database went away")
                return _original(*args, **kwargs)

            monkeypatch.setattr(module, name, failing)
            with pytest.raises(RuntimeError):
                _step((system, domain, new_rows), ingest_fn)
            assert len(calls) == fail_at, path
            monkeypatch.setattr(module, name, original)
            assert _live() == before, path
            assert fuzzy._population("customer") == before, path
            transaction.set_rollback(True)
