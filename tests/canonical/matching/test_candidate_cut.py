"""The candidates kept when more than MAX_CANDIDATES golden records share blocking keys: chosen by what the keys
say (how many key types, how rare, which), never by the golden ids, which are random. Two runs of the same input
must keep the same golden records, so decide the same (record by record and in bulk alike)."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import uuid

import pytest

from canonical.matching import fuzzy as fuzzy_module
from canonical.matching.fuzzy import MAX_CANDIDATES, rank_candidates
from canonical.services.bulk import source_records_ingest_bulk
from canonical.services.ingest import source_records_ingest
from tests.canonical.test_ingest_bulk import assert_same_state, run

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
# 20 companies whose names share the blocking keys nt:nimbus, n4:nimb and ac:nb and nothing else
WORDS = (
    "Bramble Birch Brook Basalt Beacon Bishop Boulder Bristle Bellow Banner "
    "Bolt Bounty Breaker Bluff Badger Bastion Beryl Blossom Bracken Burrow"
).split()
assert len(WORDS) > MAX_CANDIDATES


def _row(source_id: str, name: str, street: str) -> dict:
    attributes = {"name": name, "address_line1": street, "city": "Leeds", "country": "GB"}
    return {"source_id": source_id, "updated_at": T0.isoformat(), "deleted": False, "attributes": attributes}


def _company(i: int) -> dict:
    return _row(f"N{i}", f"Nimbus {WORDS[i]} Ltd", f"{i + 1} Harbour Road")


def _batches() -> list:
    """Ten companies, then ten more with two records (typos) of the first and last one: each typo shares only
    the keys all twenty share (its own name token and phonetic key differ), so the twenty tie, and its own
    company is one of the MAX_CANDIDATES kept or not."""
    first = [_company(i) for i in range(10)]
    second = [_company(i) for i in range(10, len(WORDS))]
    second.append(_row("T0", "Nimbus Brambel Ltd", "1 Harbour Road"))  # N0, Nimbus Bramble
    second.append(_row("T19", "Nimbus Burrwo Ltd", f"{len(WORDS)} Harbour Road"))  # N19, Nimbus Burrow
    return [("crm", "customer", first), ("crm", "customer", second)]


def _uuid_sequence(monkeypatch, *, descending: bool) -> None:
    """Golden ids in ascending or descending order of creation (the old cut kept the smallest ids)."""
    counter = itertools.count(1)

    def uuid4() -> uuid.UUID:
        n = next(counter)
        return uuid.UUID(int=(1 << 127) - n if descending else (1 << 120) + n)

    monkeypatch.setattr(uuid, "uuid4", uuid4)


def _outcomes(results: list) -> dict[str, str]:
    return {r["source_id"]: r["outcome"] for _, _, r in results}


@pytest.mark.django_db
def test_record_by_record_keeps_the_same_candidates_whatever_the_golden_ids(monkeypatch):
    batches = _batches()
    _uuid_sequence(monkeypatch, descending=False)
    results_a, state_a = run(batches, source_records_ingest, batch_size=5)
    _uuid_sequence(monkeypatch, descending=True)
    results_b, state_b = run(batches, source_records_ingest, batch_size=5)
    assert _outcomes(results_a) == _outcomes(results_b)
    assert_same_state(state_a, state_b)
    # all twenty tie on what they share; the company first listed is kept (and its typo links), the last is not
    assert _outcomes(results_a)["T0"] == "linked"
    assert _outcomes(results_a)["T19"] == "created"


@pytest.mark.django_db
@pytest.mark.parametrize("batch_size", [500, 7])
def test_bulk_keeps_the_candidates_record_by_record_ingest_keeps_whatever_the_golden_ids(monkeypatch, batch_size):
    """In bulk the tie spans golden records in the database and the batch's own (temporary source record ids,
    ordered after every written one, as they will be written)."""
    batches = _batches()
    _uuid_sequence(monkeypatch, descending=False)
    results_a, state_a = run(batches, source_records_ingest, batch_size=batch_size)
    _uuid_sequence(monkeypatch, descending=True)
    results_b, state_b = run(batches, source_records_ingest_bulk, batch_size=batch_size)
    assert _outcomes(results_a) == _outcomes(results_b)
    assert_same_state(state_a, state_b)


def _groups(*pairs: tuple[str, int]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for golden_id, sid in pairs:
        groups.setdefault(golden_id, []).append(sid)
    return groups


def test_ranking_prefers_more_key_types_then_rarer_keys_then_the_first_listed_never_the_id():
    many = [(f"{i:02d}", 100 + i) for i in range(MAX_CANDIDATES + 4)]  # ids sort before every one below
    common = (("nt", "nimbus"), 40, [_groups(*many, ("z-rare", 900), ("y-two-types", 901))])
    rare = (("nt", "quill"), 2, [_groups(("z-rare", 900), ("x", 950))])
    other_type = (("n4", "nimb"), 60, [_groups(("y-two-types", 901))])
    kept = rank_candidates([common, rare, other_type])
    # two key types; the rarest keys. The rest tie on everything the keys say and do not all fit below those
    # three: left out whole
    assert sorted(kept) == ["x", "y-two-types", "z-rare"]
    few = many[: MAX_CANDIDATES - 3]  # a tie that fits in the places left is kept whole
    common = (("nt", "nimbus"), 40, [_groups(*few, ("z-rare", 900), ("y-two-types", 901))])
    assert set(rank_candidates([common, rare, other_type])) == {"x", "y-two-types", "z-rare", *(g for g, _ in few)}
    # a tie that is all there is: the golden records first listed (smallest source record id), whatever their ids
    reversed_ids = [(f"{99 - int(g)}", sid) for g, sid in many]  # the same rows, golden ids in the other order
    common = (("nt", "nimbus"), 40, [_groups(*reversed_ids)])
    assert set(rank_candidates([common])) == {g for g, _ in reversed_ids[:MAX_CANDIDATES]}


def test_ranking_counts_a_key_once_across_its_database_and_batch_rows_and_puts_the_batch_after():
    """The bulk path passes a key's rows in the database and in its overlay (temporary ids -1, -2, ...) apart; a
    golden record in both shares that key once, and overlay rows come after every written row."""
    db = _groups(*[(f"db{i:02d}", 500 + i) for i in range(MAX_CANDIDATES - 2)], ("both", 999))
    overlay = _groups(("both", -1), ("ov-first", -2), ("ov-second", -3))
    kept = rank_candidates([(("nt", "nimbus"), MAX_CANDIDATES + 2, [db, overlay])])
    # "both" has two rows of the key (the others one), then the database's by id, then -2 before -3
    assert set(kept) == {"both", "ov-first", *(f"db{i:02d}" for i in range(MAX_CANDIDATES - 2))}


def test_a_golden_record_in_a_keys_database_and_batch_rows_shares_that_key_once():
    """Counted twice, "both" (in key k1's database rows and in its overlay rows) would outweigh "z" (k1 and the
    commoner k2); counted once, "z" takes the last place and "both" is cut."""
    strong = [(f"g{i:02d}", 100 + i) for i in range(MAX_CANDIDATES - 1)]  # two key types each: always kept
    kept = rank_candidates(
        [
            (("nt", "k1"), 3, [_groups(("both", 1), ("z", 2)), _groups(("both", -1))]),
            (("nt", "k2"), 10, [_groups(("z", 3))]),
            (("ac", "k3"), 15, [_groups(*strong)]),
            (("ph", "k4"), 15, [_groups(*strong)]),
        ]
    )
    assert "z" in kept and "both" not in kept and len(kept) == MAX_CANDIDATES


def _ranked_by_full_sort(usable) -> list[str]:
    """rank_candidates' order written out plainly: every golden record's whole sort key, one sort."""
    found: dict[str, list] = {}
    for key, count, groups_list in usable:
        for golden_id in set().union(*groups_list):
            entry = found.setdefault(golden_id, [set(), 0, [], 0, []])
            entry[0].add(key[0])
            entry[1] += fuzzy_module._RARITY_SCALE // count
            entry[2].append(key)
        for groups in groups_list:
            for golden_id, sids in groups.items():
                found[golden_id][3] += len(sids)
                found[golden_id][4] += [sid if sid >= 0 else fuzzy_module._AFTER_WRITTEN - sid for sid in sids]
    ranked = sorted(
        found, key=lambda g: (-len(found[g][0]), -found[g][1], found[g][2], -found[g][3], min(found[g][4]), g)
    )
    if len(ranked) > MAX_CANDIDATES:
        # a tie on the score at the cut that does not fit, below golden records that rank above it: left out whole
        score = {g: (len(found[g][0]), found[g][1]) for g in ranked}
        cut = score[ranked[MAX_CANDIDATES - 1]]
        above = [g for g in ranked if score[g] > cut]
        if above and score[ranked[MAX_CANDIDATES]] == cut:
            return above
    return ranked[:MAX_CANDIDATES]


@pytest.mark.parametrize("seed", range(40))
def test_ranking_works_out_the_tie_at_the_cut_as_a_full_sort_would(seed):
    rng = random.Random(seed)
    goldens = [f"g{i:03d}" for i in range(rng.randrange(5, 60))]
    next_sid = itertools.count(1)
    usable = []
    for k in range(rng.randrange(1, 7)):
        key = (rng.choice(("n", "nt", "np", "d")), f"v{k}")
        groups_list = []
        for negative in (False, True)[: rng.randrange(1, 3)]:  # the database's rows, then maybe the overlay's
            groups: dict[str, list[int]] = {}
            for golden_id in rng.sample(goldens, rng.randrange(1, len(goldens) + 1)):
                sids = [next(next_sid) for _ in range(rng.choice((1, 1, 1, 2)))]
                groups[golden_id] = [-sid if negative else sid for sid in sids]
            groups_list.append(groups)
        usable.append((key, sum(len(s) for g in groups_list for s in g.values()), groups_list))
    assert set(rank_candidates(usable)) == set(_ranked_by_full_sort(usable))


@pytest.mark.django_db
@pytest.mark.parametrize("batch_size", [500, 7])
def test_a_tie_below_a_better_candidate_is_left_out_in_both_paths(batch_size):
    """A namesake of T0 abroad shares every key type with it, so it ranks above the twenty, whose tie does not fit
    below it and is left out whole: T0 is compared with the namesake only and does not reach N0, which it linked to
    before (N0 was listed first; without the namesake it still does, test above). Record by record and in bulk
    alike."""
    batches = _batches()
    namesake = {"name": "Nimbus Brambel Ltd", "address_line1": "5 Rue de Rivoli", "city": "Paris", "country": "FR"}
    batches[0][2].append({**_row("P1", "", ""), "attributes": namesake})
    results_a, state_a = run(batches, source_records_ingest, batch_size=batch_size)
    results_b, state_b = run(batches, source_records_ingest_bulk, batch_size=batch_size)
    assert _outcomes(results_a) == _outcomes(results_b)
    assert_same_state(state_a, state_b)
    golden = {r["source_id"]: r.get("golden_id") for _, _, r in results_a}
    assert golden["T0"] != golden["N0"] and golden["P1"] != golden["N0"]


@pytest.mark.django_db
def test_a_record_matched_again_still_gets_the_crowd_below_its_own_golden_record(fuzzy):
    """An update (or a re-match) matches a source record with itself excluded: its own golden record is found
    through its other source records' rows and ranks above the crowd, but does not leave the crowd's tie out."""
    from canonical.models import SourceRecord

    from .conftest import ingest, rec

    for i in range(len(WORDS)):
        ingest(
            "crm",
            "customer",
            rec(
                f"N{i}",
                name=f"Nimbus {WORDS[i]} Ltd",
                address_line1=f"{i + 1} Harbour Road",
                city="Leeds",
                country="GB",
            ),
        )
    own = {"name": "Nimbus Quorra Ltd", "website": "quorra.example", "country": "GB"}
    ingest("crm", "customer", rec("Q1", **own))
    ingest("erp", "customer", rec("Q2", **own))
    q1 = SourceRecord.objects.get(system_id="crm", source_id="Q1")
    q2 = SourceRecord.objects.get(system_id="erp", source_id="Q2")
    assert q1.golden_id == q2.golden_id  # one golden record with two source records
    _, scored = fuzzy.candidates(domain="customer", values=q1.values, exclude_source_record=q1.pk)
    golden_ids = {str(g.golden_id) for g in scored}
    assert str(q1.golden_id) in golden_ids
    assert len(golden_ids) == MAX_CANDIDATES  # its own golden record, and the crowd's tie broken for the rest
