"""rank_candidates' tie-break (a tie at the cut with nothing ranked above it) keeps exactly the golden ids, in
exactly the order, of the algorithm it replaced (a lambda sort key per tied golden record; the tied golden ids
looked up in a key's larger dicts through a generator): _reference below, on random rows with ties at the cut,
temporary (negative) source record ids and a key's rows in more than one dict. The rule for a tie below others
(left out whole) is checked against a plain full sort in test_candidate_cut.py and by the examples here."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from canonical.matching.fuzzy import (
    _AFTER_WRITTEN,
    _RARITY_SCALE,
    _TYPE_WEIGHT,
    KEY_CAP,
    MAX_CANDIDATES,
    rank_candidates,
)


def _rows_of(groups, wanted):
    for golden_id in wanted:
        sids = groups.get(golden_id)
        if sids is not None:
            yield golden_id, sids


def _reference(usable) -> list[str]:
    """rank_candidates (and its _rows_of, above) as they were at b6d328c, plus the rule on a tie below others."""
    score: dict[str, int] = {}
    get = score.get
    by_type: dict[str, list] = {}
    for entry in usable:
        by_type.setdefault(entry[0][0], []).append(entry)
    for entries in by_type.values():
        if len(entries) == 1:
            (_, count, groups_list) = entries[0]
            weight = _TYPE_WEIGHT + _RARITY_SCALE // count
            goldens = groups_list[0] if len(groups_list) == 1 else set().union(*groups_list)
            for golden_id in goldens:
                score[golden_id] = get(golden_id, 0) + weight
            continue
        of_type: set[str] = set()
        for _, count, groups_list in entries:
            weight = _RARITY_SCALE // count
            goldens = groups_list[0] if len(groups_list) == 1 else set().union(*groups_list)
            for golden_id in goldens:
                score[golden_id] = get(golden_id, 0) + weight
            of_type.update(goldens)
        for golden_id in of_type:
            score[golden_id] += _TYPE_WEIGHT
    if len(score) <= MAX_CANDIDATES:
        return list(score)
    cut = sorted(score.values(), reverse=True)[MAX_CANDIDATES - 1]
    kept = [golden_id for golden_id, value in score.items() if value > cut]
    tied = [golden_id for golden_id, value in score.items() if value == cut]
    wanted = MAX_CANDIDATES - len(kept)
    if len(tied) == wanted:
        return kept + tied
    if kept:
        return kept
    tie: dict[str, list] = {golden_id: [[], 0, _AFTER_WRITTEN * 2] for golden_id in tied}
    for key, _, groups_list in usable:
        for groups in groups_list:
            for golden_id, sids in groups.items() if len(groups) <= len(tie) else _rows_of(groups, tie):
                entry = tie.get(golden_id)
                if entry is None:
                    continue
                if not entry[0] or entry[0][-1] != key:
                    entry[0].append(key)
                entry[1] += len(sids)
                for sid in sids:
                    at = sid if sid >= 0 else _AFTER_WRITTEN - sid
                    if at < entry[2]:
                        entry[2] = at
    tied.sort(key=lambda g: (tie[g][0], -tie[g][1], tie[g][2], g))
    return kept + tied[:wanted]


# Few key types, values, golden ids and counts, so that ties (equal scores, equal key lists, equal rows) are
# common; source record ids from a small range (shared first-listed ids) or anywhere a bigint reaches.
_sids = st.lists(st.one_of(st.integers(-6, 40), st.integers(-(2**63), 2**63 - 1)), min_size=1, max_size=3)
_groups = st.dictionaries(st.sampled_from([f"g{i:02d}" for i in range(40)]), _sids, min_size=1, max_size=40)
_key = st.tuples(st.sampled_from(("n", "nt", "ph")), st.sampled_from(("a", "b", "c", "d")))


@st.composite
def _usable(draw):
    keys = draw(st.lists(_key, min_size=1, max_size=7))  # a record's are distinct; any are ranked alike
    usable = []
    for key in keys:
        groups_list = draw(st.lists(_groups, min_size=1, max_size=3))  # the database's rows, the overlay's, ...
        rows = sum(len(sids) for groups in groups_list for sids in groups.values())
        count = draw(st.one_of(st.just(rows), st.sampled_from((1, 2, 3, 40, KEY_CAP))))
        usable.append((key, count, groups_list))
    return usable


# the tie-break only now (a tie with nothing above it); the rule for a tie below others: test_candidate_cut's seeds
@settings(max_examples=800, deadline=None)
@given(_usable())
def test_rank_candidates_keeps_the_reference_algorithms_golden_ids_in_its_order(usable):
    assert rank_candidates(usable) == _reference(usable)


def test_a_tie_is_broken_by_rows_then_the_first_listed_written_before_temporary():
    usable = [(("n", "a"), 40, [{f"g{i:02d}": [40 - i] for i in range(30)}, {"g00": [-1], "g39": [-2]}])]
    ranked = rank_candidates(usable)
    assert ranked == _reference(usable)
    assert ranked == ["g00", *(f"g{i:02d}" for i in range(29, 14, -1))]  # two rows; then 11, 12, ... (not -2)


def test_a_tie_that_does_not_fit_below_better_golden_records_is_left_out_whole():
    """Three golden records share more with the record than the twenty that share only one common key: those three
    are scored, none of the twenty (which of them would be a pick by listing order); alone, the twenty's tie is
    broken by the first listed."""
    crowd = {f"g{i:02d}": [100 + i] for i in range(20)}
    better = {"a": [1], "b": [2], "c": [3]}
    usable = [(("n4", "nimb"), 23, [{**crowd, **better}]), (("nt", "quill"), 3, [better])]
    assert sorted(rank_candidates(usable)) == ["a", "b", "c"]
    assert rank_candidates(usable) == _reference(usable)
    alone = [(("n4", "nimb"), 20, [crowd])]
    assert sorted(rank_candidates(alone)) == [f"g{i:02d}" for i in range(MAX_CANDIDATES)]


def test_the_records_own_golden_record_does_not_count_as_ranking_above_a_tie():
    """A record matched again (an update, a re-match) finds its own golden record through its other source records'
    rows, sharing every key type: that says nothing about the crowd, whose tie is broken as if nothing ranked above
    it (the own golden record keeps one place). Anything else above the tie still leaves it out."""
    crowd = {f"g{i:02d}": [100 + i] for i in range(20)}
    usable = [(("n4", "nimb"), 21, [{**crowd, "own": [7]}]), (("d", "own.example"), 1, [{"own": [7]}])]
    assert rank_candidates(usable) == ["own"]
    ranked = rank_candidates(usable, "own")
    assert ranked[0] == "own" and sorted(ranked[1:]) == [f"g{i:02d}" for i in range(MAX_CANDIDATES - 1)]
    other = [*usable, (("ph", "1"), 1, [{"other": [8]}])]  # ranks above the crowd too (a rare key of another type)
    other[0] = (("n4", "nimb"), 22, [{**crowd, "own": [7], "other": [8]}])
    assert sorted(rank_candidates(other, "own")) == ["other", "own"]
