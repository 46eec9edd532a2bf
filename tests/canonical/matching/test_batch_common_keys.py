"""BatchMatch reads a key too common to block on as a count only: it must still decide what FuzzyMatcher decides,
also once records sharing that key change (refresh) and the key may be rare again."""

from __future__ import annotations

import pytest

from canonical.matching import batch as batch_module
from canonical.matching import fuzzy as fuzzy_module
from canonical.matching.batch import BatchMatch
from canonical.services.bulk import source_records_ingest_bulk
from canonical.services.ingest import source_records_ingest
from tests.canonical.test_ingest_bulk import assert_same_state, run, scenario

from .conftest import ingest, rec

pytestmark = pytest.mark.django_db


def _cap(monkeypatch, key_cap: int, count_cap: int) -> None:
    monkeypatch.setattr(fuzzy_module, "KEY_CAP", key_cap)
    monkeypatch.setattr(batch_module, "KEY_CAP", key_cap)
    monkeypatch.setattr(batch_module, "COMMON_COUNT_CAP", count_cap)


def _same(a, b) -> None:
    assert (a.decision, a.golden_id, a.reason) == (b.decision, b.golden_id, b.reason)
    assert [(c.golden_id, c.score, c.reason) for c in a.candidates] == [
        (c.golden_id, c.score, c.reason) for c in b.candidates
    ]


def _spy_key_reads(monkeypatch) -> list:
    """The keys BatchMatch reads from the database from now on (key_rows_bulk's arguments), in a list."""
    asked: list = []
    original = batch_module.key_rows_bulk

    def key_rows_bulk(domain, keys):
        asked.extend(keys)
        return original(domain, keys)

    monkeypatch.setattr(batch_module, "key_rows_bulk", key_rows_bulk)
    return asked


def _batch_decides_as_fuzzy(fuzzy, probe: dict):
    """A new BatchMatch (the next batch) matches `probe`; it must decide what FuzzyMatcher decides."""
    batch = BatchMatch(domain="customer", matcher=fuzzy)
    batch.prefetch([probe])
    outcome, _ = batch.match(values=probe)
    _same(outcome, fuzzy.search(domain="customer", values=probe))
    return batch, outcome


def test_a_common_key_that_becomes_rare_after_a_refresh_is_blocked_on_again(fuzzy, monkeypatch):
    _cap(monkeypatch, key_cap=3, count_cap=4)
    names = ("Quorra Ltd", "Zebedee Plc", "Mulberry Ltd", "Yardley Ltd")
    for i, name in enumerate(names):  # four records of one web domain (one golden record): too common for a cap of 3
        ingest("crm", "customer", rec(f"s{i}", name=name, website="shared-domain.example", country="GB"))
    probe = {"name": "Xylophone Holdings Ltd", "website": "shared-domain.example", "country": "FR"}
    batch = BatchMatch(domain="customer", matcher=fuzzy)
    batch.prefetch([probe])
    before, _ = batch.match(values=probe)
    _same(before, fuzzy.search(domain="customer", values=probe))
    assert before.candidates == []  # the web domain is too common to block on
    assert batch._db_rows[("d", "shared-domain.example")] is None  # read as a count only

    # one of them moves to another web domain (record by record, as the bulk path's fallback): three are left
    later = rec("s0", name="Quorra Ltd", website="quorra.example", country="GB")
    later["updated_at"] = "2024-02-01T00:00:00+00:00"
    ingest("crm", "customer", later)
    batch.refresh(system="crm", source_ids=["s0"])
    after, _ = batch.match(values=probe)
    expected = fuzzy.search(domain="customer", values=probe)
    assert len(expected.candidates) == 1  # the web domain is rare again: the golden record of the three is a candidate
    _same(after, expected)


def test_a_refresh_that_changes_nothing_keeps_a_common_key_without_reading_it_again(fuzzy, monkeypatch):
    _cap(monkeypatch, key_cap=3, count_cap=4)
    for i, name in enumerate(("Quorra Ltd", "Zebedee Plc", "Mulberry Ltd", "Yardley Ltd")):
        ingest("crm", "customer", rec(f"s{i}", name=name, website="shared-domain.example", country="GB"))
    probe = {"name": "Quorra Limited", "website": "shared-domain.example", "country": "GB"}
    batch = BatchMatch(domain="customer", matcher=fuzzy)
    batch.prefetch([probe])
    _same(batch.match(values=probe)[0], fuzzy.search(domain="customer", values=probe))
    assert batch._db_common[("d", "shared-domain.example")] == 4
    batch.refresh(system="crm", source_ids=["s0"])  # read again, unchanged: its keys are the same
    assert batch._db_common[("d", "shared-domain.example")] == 4
    _same(batch.match(values=probe)[0], fuzzy.search(domain="customer", values=probe))


@pytest.mark.parametrize(("key_cap", "count_cap", "batch_size"), [(3, 4, 500), (4, 9, 13), (2, 3, 7)])
def test_bulk_ingest_with_many_common_keys_leaves_the_state_record_by_record_ingest_leaves(
    monkeypatch, key_cap, count_cap, batch_size
):
    _cap(monkeypatch, key_cap, count_cap)
    batches = scenario(seed=5, companies=60)
    results_a, state_a = run(batches, source_records_ingest, batch_size=batch_size)
    results_b, state_b = run(batches, source_records_ingest_bulk, batch_size=batch_size)
    assert [r["outcome"] for _, _, r in results_a] == [r["outcome"] for _, _, r in results_b]
    assert_same_state(state_a, state_b)


@pytest.mark.postgres  # elsewhere key_rows_bulk is _key_rows itself
def test_key_rows_bulk_reads_the_rows_key_rows_reads(fuzzy, monkeypatch):
    """key_rows_bulk (one query, each key's rows aggregated as text and split) gives each key's rows as fuzzy's
    `_key_rows` reads them (golden ids as text, source record ids as ints), a key with no rows as none and a key
    with more than KEY_CAP rows as its count only."""
    from canonical.matching.batch import key_rows_bulk
    from canonical.matching.definitions import get_definition
    from canonical.models import MatchKey

    _cap(monkeypatch, key_cap=3, count_cap=4)
    names = ("Quorra Ltd", "Zebedee Plc", "Mulberry Ltd", "Yardley Ltd", "Quorra Holdings")
    for i, name in enumerate(names):  # one web domain shared by more than 3: too common at this cap
        ingest("crm", "customer", rec(f"s{i}", name=name, website="shared-domain.example", country="GB"))
    ingest("erp", "customer", rec("e1", name="Quorra Ltd", phone="+44 20 7946 0000", country="GB"))
    keys = list(dict.fromkeys(MatchKey.objects.values_list("key_type", "key_value")))
    keys.append(("d", "nobody.example"))
    defn = get_definition("customer")
    keys += [key for key in defn.keys(defn.prepare({"name": "Quorra"})) if key not in keys]
    rows, common = key_rows_bulk("customer", keys)
    expected = fuzzy_module._key_rows("customer", keys)
    assert common == {("d", "shared-domain.example"): 4}  # counted up to the count cap
    assert set(rows) == set(keys) - set(common)
    for key, found in rows.items():
        assert sorted(found) == sorted(expected[key])
        assert all(type(golden) is str and type(sid) is int for golden, sid in found)
    assert rows[("d", "nobody.example")] == []
    assert any(len(found) > 1 for found in rows.values())


def test_in_a_big_hub_a_key_known_common_is_not_counted_again_until_it_loses_a_row(fuzzy, monkeypatch):
    """In a big hub record-by-record matching skips keys its memo knows to be too common; the bulk path skips the
    same ones (and adds those it finds), so both decide alike without counting them again in every batch. A key
    that loses a row is forgotten by the memo and counted again by both."""
    import time

    _cap(monkeypatch, key_cap=3, count_cap=4)
    monkeypatch.setattr(fuzzy_module, "_common_key_memo", {})
    monkeypatch.setattr(fuzzy_module, "_population_memo", {})
    for i, name in enumerate(("Quorra Ltd", "Zebedee Plc", "Mulberry Ltd", "Yardley Ltd")):
        ingest("crm", "customer", rec(f"s{i}", name=name, website="shared-domain.example", country="GB"))
    key = ("d", "shared-domain.example")
    # the hub is known to be big (the population memo says so, as a big hub's shared count does)
    fuzzy_module._population_memo[fuzzy_module.population_cache_key("customer")] = (time.monotonic() + 3600, 20_000)
    asked = _spy_key_reads(monkeypatch)
    probe = {"name": "Xylophone Holdings Ltd", "website": "shared-domain.example", "country": "FR"}
    first = BatchMatch(domain="customer", matcher=fuzzy)
    first.prefetch([probe])
    _same(first.match(values=probe)[0], fuzzy.search(domain="customer", values=probe))
    assert key in asked and key in fuzzy_module.known_common_keys("customer")  # counted once, then known

    asked.clear()
    second = BatchMatch(domain="customer", matcher=fuzzy)  # the next batch
    second.prefetch([probe])
    outcome, _ = second.match(values=probe)
    assert key not in asked and asked  # not counted again; the record's other keys are read
    assert second._db_rows[key] is None and second._db_common[key] == 4  # common, as little as a common key has
    _same(outcome, fuzzy.search(domain="customer", values=probe))
    assert outcome.candidates == []

    # one of the four moves to another web domain: the key lost a row, the memo forgets it, both count it again
    later = rec("s0", name="Quorra Ltd", website="quorra.example", country="GB")
    later["updated_at"] = "2024-02-01T00:00:00+00:00"
    ingest("crm", "customer", later)
    assert key not in fuzzy_module.known_common_keys("customer")
    asked.clear()
    third = BatchMatch(domain="customer", matcher=fuzzy)
    third.prefetch([probe])
    outcome, _ = third.match(values=probe)
    assert key in asked
    expected = fuzzy.search(domain="customer", values=probe)
    assert len(expected.candidates) == 1
    _same(outcome, expected)


def test_an_evaluation_run_keeps_its_own_memo_of_common_keys(fuzzy, monkeypatch):
    """Inside population_private (an evaluation's rolled-back run) the memo of common keys is the run's own, under
    the same condition on the run's own population: a key found common by one batch is not counted again by the
    next, nor by record-by-record matching; it is forgotten when it loses a row; and the process's memo is
    neither read nor filled."""
    _cap(monkeypatch, key_cap=3, count_cap=4)
    monkeypatch.setattr(fuzzy_module, "_common_key_memo", {})
    monkeypatch.setattr(fuzzy_module, "_population_memo", {})
    monkeypatch.setattr(fuzzy_module, "_POPULATION_CACHE_FROM", 5)  # 'big' from five live records
    key = ("d", "shared-domain.example")
    process_memo = fuzzy_module._common_keys("customer")
    process_memo.add(("d", "only-the-hub-knows.example"))
    asked = _spy_key_reads(monkeypatch)
    probe = {"name": "Xylophone Holdings Ltd", "website": "shared-domain.example", "country": "FR"}
    with fuzzy_module.population_private("customer"):
        for i, name in enumerate(("Quorra Ltd", "Zebedee Plc", "Mulberry Ltd", "Yardley Ltd")):
            ingest("crm", "customer", rec(f"s{i}", name=name, website="shared-domain.example", country="GB"))
        fuzzy_module._population("customer")  # counted: 4, small — no memo yet
        assert fuzzy_module.known_common_keys("customer") is None
        ingest("crm", "customer", rec("s9", name="Umbrella Corp", website="umbrella.example", country="GB"))
        memo = fuzzy_module.known_common_keys("customer")
        assert memo == set() and memo is not process_memo  # 5 live: big, and the run's own memo

        _batch_decides_as_fuzzy(fuzzy, probe)
        assert key in asked and memo == {key}
        asked.clear()
        _batch_decides_as_fuzzy(fuzzy, probe)
        assert key not in asked and asked

        later = rec("s0", name="Quorra Ltd", website="quorra.example", country="GB")
        later["updated_at"] = "2024-02-01T00:00:00+00:00"
        ingest("crm", "customer", later)  # the key lost a row: forgotten
        assert key not in memo
        asked.clear()
        _, outcome = _batch_decides_as_fuzzy(fuzzy, probe)
        assert key in asked and len(outcome.candidates) == 1
    assert process_memo == {("d", "only-the-hub-knows.example")}  # the process's memo: untouched
    assert fuzzy_module.known_common_keys("customer") is None  # outside: the hub (no cached count) is small


def test_a_key_that_loses_a_row_is_forgotten_even_while_the_memo_is_not_in_use(monkeypatch):
    """A hub (or a run) below the size the memo is used from may grow back above it: a key that lost a row
    meanwhile must not be skipped then, so forgetting does not depend on the memo being in use."""
    monkeypatch.setattr(fuzzy_module, "_common_key_memo", {})
    monkeypatch.setattr(fuzzy_module, "_population_memo", {})
    key, other = ("d", "shared-domain.example"), ("d", "other.example")
    gone = {(*key, "golden-1")}
    hub_memo = fuzzy_module._common_keys("customer")
    hub_memo.update({key, other})
    assert fuzzy_module.known_common_keys("customer") is None  # a small hub: not in use
    fuzzy_module.common_keys_forget("customer", gone, set())
    assert hub_memo == {other}
    with fuzzy_module.population_private("customer"):
        run_memo = fuzzy_module._private_common_keys.get()["customer"]
        run_memo.update({key, other})
        fuzzy_module._private_population.get()["customer"] = 3  # a small run: not in use
        assert fuzzy_module.known_common_keys("customer") is None
        fuzzy_module.common_keys_forget("customer", gone, {(*other, "golden-2")})
        assert run_memo == {other}
    assert hub_memo == {other}
