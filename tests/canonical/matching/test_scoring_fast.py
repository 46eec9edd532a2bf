"""The weights-first scorer decides exactly as full scoring always has.

`Scorer.score` computes a pair's levels, weight and veto and builds the per-field explanation and reason line
only when they are read. These tests compare it with full scoring as it was written before (`full_score_pair`
below: every field explained and the reason line built for every pair) over the labelled files' blocked and
random pairs of every domain, with and without term-frequency adjustment, and over pairs drawn by hypothesis:
the same veto, the same weight and probability, the same explanation and reason, and the same decision
(the decided golden record, its reason, every candidate in order with its score and explanation).
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import math
import pickle
import random
import uuid
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canonical.domains import get_domain
from canonical.matching import em
from canonical.matching.base import Candidate, FieldComparison, MatchOutcome, ScoredCandidate
from canonical.matching.batch import content_key
from canonical.matching.definitions import get_definition
from canonical.matching.fuzzy import FuzzyMatcher, _GoldenScore, golden_scores
from canonical.matching.scoring import TF_CLAMP, Scored, prior_weight, probability, reason_line, score_pair

LABELLED = Path(__file__).resolve().parents[3] / "fixtures" / "labelled"


def full_score_pair(*, comparisons, hard_rules, prior, a, b, tf=None, noun="record") -> Scored:
    """Full scoring as canonical/matching/scoring.py did it before the weights-first path (the reference)."""
    fields: list[FieldComparison] = []
    total = prior_weight(prior)
    for comp in comparisons:
        level_name, shown_a, shown_b = comp.compare(a, b)
        if level_name is None:
            fields.append(FieldComparison(comp.name, shown_a, shown_b, "missing", 0.0))
            continue
        lvl = comp.level(level_name)
        weight = lvl.weight
        label = lvl.name
        if tf is not None and comp.tf_key and level_name == comp.levels[0].name and a.get(comp.tf_feature):
            u_tf = tf(comp.tf_key, a[comp.tf_feature])
            if u_tf:
                adjust = max(TF_CLAMP[0], min(TF_CLAMP[1], math.log2(lvl.u / u_tf)))
                if abs(adjust) >= 0.05:
                    weight += adjust
                    label = f"{lvl.name} (term frequency {adjust:+.1f})"
        total += weight
        fields.append(FieldComparison(comp.name, shown_a, shown_b, label, round(weight, 3)))
    veto = None
    for rule in hard_rules:
        veto = rule.check(a, b)
        if veto:
            break
    if veto:
        return Scored(
            weight=-math.inf, probability=0.0, comparisons=fields, veto=veto, reason=f"never the same: {veto}"
        )
    scored = Scored(weight=total, probability=probability(total), comparisons=fields)
    scored.reason = reason_line(scored, comparisons, noun=noun)
    return scored


def full_golden_scores(defn, per_golden) -> list[_GoldenScore]:
    """fuzzy's aggregation of source-record scores into golden-record scores as it was written before."""
    scored = []
    for golden_id, results in per_golden.items():
        vetoed = next((r for r in results if r.veto), None)
        ordered = sorted(results, key=lambda r: -r.weight)
        identified = any(c.field in defn.identifiers and c.level.startswith("exact") for c in ordered[0].comparisons)
        scored.append(_GoldenScore(golden_id, ordered[0], ordered[-1], vetoed, len(results), identified))
    scored.sort(key=lambda g: (-(g.best.weight if g.vetoed is None else float("-inf")), str(g.golden_id)))
    return scored


class _FullMatcher(FuzzyMatcher):
    """decide() with candidates built eagerly, as before."""

    @staticmethod
    def _candidate(g: _GoldenScore) -> Candidate:
        scored = g.vetoed or g.best
        return Candidate(g.golden_id, round(scored.probability, 6), scored.reason, scored.comparisons)


def _labelled(domain: str) -> tuple[list[dict], list[str]]:
    spec = get_domain(domain)
    with open(LABELLED / f"{domain}.csv", newline="", encoding="utf-8") as fh:
        reader = list(csv.DictReader(fh))
    rows = [{k: v for k, v in r.items() if spec.get(k) is not None and v != ""} for r in reader]
    return rows, [r["cluster"] for r in reader]


def _identified_rows(domain: str, n: int = 400, seed: int = 4) -> tuple[list[dict], list[str]]:
    """Contracts, projects, rate cards: codes shared, one typo apart or different, titles alike or not."""
    rng = random.Random(seed)
    ident, title = {"contract": ("contract_number", "title"), "project": ("project_code", "name")}.get(
        domain, ("code", "name")
    )
    words = "alpha beta gamma delta rollout migration support platform retainer framework audit".split()
    rows, clusters = [], []
    for i in range(n):
        base = i // 2 if rng.random() < 0.7 else i
        code = f"C-{base:04d}" if rng.random() < 0.8 else f"C-{base:04d}{rng.choice('XY')}"
        row = {title: " ".join(rng.sample(words, 3)) if rng.random() < 0.5 else f"{words[base % 11]} {base}"}
        if rng.random() < 0.9:
            row[ident] = code
        if rng.random() < 0.5:
            row["currency"] = rng.choice(["EUR", "USD"])
        if rng.random() < 0.5:
            row["start_date"] = f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
        rows.append(row)
        clusters.append(str(base))
    return rows, clusters


def _rows(domain: str) -> tuple[list[dict], list[str]]:
    return _labelled(domain) if domain in ("customer", "legal_entity", "resource") else _identified_rows(domain)


def _tf_of(defn, features: list[dict]):
    """Term frequencies as the hub reads them (a key's share of the population), counted in the file."""
    counts: Counter = Counter()
    for f in features:
        counts.update(defn.keys(f))
    population = max(len(features), 1000)

    def tf(key_type: str, value: str) -> float | None:
        return max(counts.get((key_type, value[:255]), 1), 1) / population

    return tf


def _assert_same(defn, fast: Scored, full: Scored) -> None:
    assert fast.veto == full.veto
    assert fast.weight == full.weight  # the same sum in the same order: equal, not only within 1e-9
    assert fast.probability == full.probability
    assert fast.exact_on(defn.identifiers) == any(
        c.field in defn.identifiers and c.level.startswith("exact") for c in full.comparisons
    )
    assert fast.comparisons == full.comparisons
    assert fast.reason == full.reason


DOMAINS = ["customer", "legal_entity", "resource", "contract", "project", "rate_card"]


@pytest.mark.parametrize("domain", DOMAINS)
def test_fast_scoring_equals_full_scoring_on_labelled_pairs(domain):
    defn = get_definition(domain)
    rows, _ = _rows(domain)
    features = [defn.prepare(r) for r in rows]
    rng = random.Random(11)
    blocked = sorted(em.blocked_pairs(defn, features))
    pairs = rng.sample(blocked, min(len(blocked), 1000))
    pairs += [(rng.randrange(len(rows)), rng.randrange(len(rows))) for _ in range(400)]
    levels_seen: set[tuple[str, str]] = set()
    vetoes = 0
    for tf in (None, _tf_of(defn, features)):
        for i, j in pairs:
            a, b = features[i], features[j]
            fast = score_pair(
                comparisons=defn.comparisons,
                hard_rules=defn.hard_rules,
                prior=defn.prior,
                a=a,
                b=b,
                tf=tf,
                noun=defn.noun,
            )
            full = full_score_pair(
                comparisons=defn.comparisons,
                hard_rules=defn.hard_rules,
                prior=defn.prior,
                a=a,
                b=b,
                tf=tf,
                noun=defn.noun,
            )
            _assert_same(defn, fast, full)
            levels_seen |= {(c.field, c.level) for c in full.comparisons}
            vetoes += full.veto is not None
    # the pairs reach the interesting places: several levels of every comparison, term-frequency labels
    for comp in defn.comparisons:
        seen = {lvl for field, lvl in levels_seen if field == comp.name} - {"missing"}
        assert len(seen) >= 2 or not seen, comp.name  # (the customer file has no legal entities)
    if any(c.tf_key for c in defn.comparisons):
        assert any("term frequency" in lvl for _, lvl in levels_seen)
    if defn.hard_rules:
        assert vetoes > 0


@pytest.mark.parametrize("domain", ["customer", "legal_entity", "resource", "contract"])
def test_decisions_equal_full_scoring_decisions(domain):
    """Each labelled record decided against the clusters sharing a blocking key with it (each cluster a golden
    record, its other records the golden record's source records): the same outcome, candidates included."""
    defn = get_definition(domain)
    rows, clusters = _rows(domain)
    features = [defn.prepare(r) for r in rows]
    tf = _tf_of(defn, features)
    by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, f in enumerate(features):
        for key in defn.keys(f):
            by_key[key].append(i)
    golden = {c: uuid.uuid5(uuid.NAMESPACE_URL, f"{domain}/{c}") for c in clusters}
    decisions: Counter = Counter()
    fast_matcher, full_matcher = FuzzyMatcher(), _FullMatcher()
    for i in range(0, len(rows), 6):
        common = [key for key in defn.keys(features[i]) if len(by_key[key]) <= 40]  # too common to block on
        members = sorted({j for key in common for j in by_key[key] if j != i})
        fast_per: dict[uuid.UUID, list] = defaultdict(list)
        full_per: dict[uuid.UUID, list] = defaultdict(list)
        for j in members:
            g = golden[clusters[j]]
            fast_per[g].append(fast_matcher._score(defn, features[i], features[j], tf))
            full_per[g].append(
                full_score_pair(
                    comparisons=defn.comparisons,
                    hard_rules=defn.hard_rules,
                    prior=defn.prior,
                    a=features[i],
                    b=features[j],
                    tf=tf,
                    noun=defn.noun,
                )
            )
        fast = fast_matcher.decide(defn, golden_scores(defn, fast_per))
        full = full_matcher.decide(defn, full_golden_scores(defn, full_per))
        assert fast.decision == full.decision
        assert fast.golden_id == full.golden_id
        assert fast.reason == full.reason
        assert [c.golden_id for c in fast.candidates] == [c.golden_id for c in full.candidates]
        assert [c.score for c in fast.candidates] == [c.score for c in full.candidates]
        assert fast.candidates == full.candidates  # reasons and per-field explanations, built on reading
        assert fast == full
        decisions[fast.decision] += 1
    assert decisions["link"] and decisions["new"]
    if domain == "customer":
        assert decisions["review"]


_NAMES = ["Acme GmbH", "ACME Holding GmbH", "Acme", "Acne GmbH", "Intl Business Machines", "IBM", "Zeta 1", "Zeta 2"]
_PHONES = ["+49 30 1234567", "030 1234567", "+49 30 1234568", "+44 20 7946 0000"]
_SITES = ["https://www.acme.de", "acme.de/about", "info@acme.com", "https://zeta.co.uk"]
_STREETS = ["Hauptstrasse 12", "Hauptstr. 12", "Hauptstrasse 14", "Rue du Moulin 3"]
_POSTALS = ["10115", "10151", "10117", "EC1 4AB"]


def _maybe(values):
    return st.one_of(st.none(), st.sampled_from(values))


_customer = st.fixed_dictionaries(
    {
        "name": _maybe(_NAMES),
        "phone": _maybe(_PHONES),
        "website": _maybe(_SITES),
        "address_line1": _maybe(_STREETS),
        "postal_code": _maybe(_POSTALS),
        "city": _maybe(["Berlin", "Berlín", "Munich", "London"]),
        "country": _maybe(["DE", "GB"]),
        "legal_entity": _maybe([str(uuid.UUID(int=1)), str(uuid.UUID(int=2))]),
    }
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=_customer, b=_customer, frequency=st.sampled_from([None, 1e-6, 1e-3, 0.01, 0.5]))
def test_fast_scoring_equals_full_scoring_on_drawn_customers(a, b, frequency):
    defn = get_definition("customer")
    fa, fb = defn.prepare({k: v for k, v in a.items() if v}), defn.prepare({k: v for k, v in b.items() if v})
    tf = None if frequency is None else (lambda key_type, value: frequency)
    kwargs = {"comparisons": defn.comparisons, "hard_rules": defn.hard_rules, "prior": defn.prior, "noun": "customer"}
    _assert_same(defn, score_pair(a=fa, b=fb, tf=tf, **kwargs), full_score_pair(a=fa, b=fb, tf=tf, **kwargs))


def test_scored_candidate_reads_compares_copies_and_pickles_as_a_candidate():
    defn = get_definition("customer")
    a = defn.prepare({"name": "Acme GmbH", "website": "acme.de", "country": "DE"})
    b = defn.prepare({"name": "ACME", "website": "https://www.acme.de", "country": "DE"})
    kwargs = {"comparisons": defn.comparisons, "hard_rules": defn.hard_rules, "prior": defn.prior, "noun": "customer"}
    full = full_score_pair(a=a, b=b, **kwargs)
    golden = uuid.uuid4()
    plain = Candidate(golden, round(full.probability, 6), full.reason, full.comparisons)
    lazy = ScoredCandidate(golden, round(full.probability, 6), scored=score_pair(a=a, b=b, **kwargs))
    assert lazy == plain and plain == lazy
    assert lazy != Candidate(golden, 0.5, full.reason, full.comparisons)
    assert dataclasses.asdict(lazy) == dataclasses.asdict(plain)
    assert repr(lazy).endswith(repr(plain).removeprefix("Candidate"))
    for clone in (pickle.loads(pickle.dumps(lazy)), copy.deepcopy(lazy), copy.copy(lazy)):
        assert type(clone) is Candidate and clone == plain
    assert dataclasses.replace(lazy, score=0.25).score == 0.25
    assert dataclasses.replace(lazy, score=0.25).reason == plain.reason
    lazy.reason = "a steward's words"
    assert lazy.reason == "a steward's words"
    assert MatchOutcome("new", candidates=[lazy]) == MatchOutcome(
        "new", candidates=[dataclasses.replace(plain, reason=lazy.reason)]
    )


def test_content_key_tells_apart_what_normalises_differently():
    same = {"name": "Acme", "phone": "1", "legal_entity": None}
    assert content_key(same) == content_key(dict(same))
    variants = [
        {"name": "Acme", "phone": 1, "legal_entity": None},
        {"name": "Acme", "phone": 1.0, "legal_entity": None},
        {"name": "Acme", "phone": True, "legal_entity": None},
        {"name": "Acme", "phone": Decimal("1.0"), "legal_entity": None},
        {"name": "Acme", "phone": Decimal("1.00"), "legal_entity": None},
        {"name": "Acme", "phone": ["1"], "legal_entity": None},
        {"name": "Acme", "phone": "1", "legal_entity": "None"},
        {"name": "Acme", "phone": "1"},
        {"phone": "1", "name": "Acme", "legal_entity": None},  # another order: a miss, never a wrong hit
    ]
    keys = [content_key(v) for v in [same, *variants]]
    assert len(set(keys)) == len(keys)


@pytest.mark.django_db
def test_live_sources_read_as_the_orm_reads_them(fuzzy):
    """fuzzy's written-out candidate query returns what the ORM query it replaces returns (in order, values
    converted by the JSONField), with and without a source record left out."""
    from canonical.matching.fuzzy import live_sources_of
    from canonical.models import SourceRecord, SourceStatus

    from .conftest import ingest, rec

    ingest("crm", "customer", rec("1", name="Nordwind Energy GmbH", website="nordwind.de", country="DE"))
    ingest("erp", "customer", rec("E1", name="NORDWIND ENERGY G.m.b.H.", website="https://nordwind.de", phone="1"))
    ingest("crm", "customer", rec("2", name="Südwind AG", country="DE", city="Köln"), rec("3", name="Other Ltd"))
    ingest("crm", "customer", {**rec("3", name="Other Ltd"), "deleted": True})
    ids = list(SourceRecord.objects.order_by("pk").values_list("pk", flat=True))
    assert len(ids) == 4
    for found, exclude in [(ids, None), (ids[:2], ids[0]), (ids[2:], None), ([ids[1]], ids[3]), ([], None)]:
        current = SourceRecord.objects.filter(pk__in=found).values("golden_id")
        expected = list(
            SourceRecord.objects.filter(
                domain="customer", golden_id__in=current, status=SourceStatus.APPLIED, deleted=False
            )
            .exclude(pk=exclude)
            .order_by("pk")
            .values_list("golden_id", "values")
        )
        assert live_sources_of("customer", found, exclude) == expected
    assert len(live_sources_of("customer", ids)) == 3  # the deleted one is not live


def test_a_level_a_comparison_does_not_have_raises_naming_it():
    """score() sums the weights as it compares: a level name the comparison has no level for (a definition's
    bug) raises the KeyError naming that comparison, whether term frequencies adjust the pair or not."""
    from canonical.matching.scoring import Comparison, Level

    known = Comparison("known", (Level("same", 0.9, 0.1),), lambda a, b: ("same", 1, 1))
    broken = Comparison("broken", (Level("same", 0.9, 0.1),), lambda a, b: ("sameish", 1, 1))
    for tf in (None, lambda key_type, value: 0.5):
        for comparisons in ((known, broken), (broken, known)):  # the last compared, or one with more to come
            with pytest.raises(KeyError, match="broken has no level 'sameish'"):
                score_pair(comparisons=comparisons, hard_rules=(), prior=0.01, a={}, b={}, tf=tf)


def test_a_compare_that_raises_a_key_error_of_its_own_raises_it_as_it_is():
    """A comparison's own KeyError (features prepared without a field it reads) comes through unchanged, not
    turned into another error by the search for an unknown level."""
    from canonical.matching.scoring import Comparison, Level

    reads = Comparison("reads", (Level("same", 0.9, 0.1),), lambda a, b: ("same" if a["first"] else None, 1, 1))
    known = Comparison("known", (Level("same", 0.9, 0.1),), lambda a, b: ("same", 1, 1))
    with pytest.raises(KeyError, match="first"):
        score_pair(comparisons=(known, reads, known), hard_rules=(), prior=0.01, a={}, b={})


def test_golden_records_scored_alike_are_ordered_by_their_id_as_text():
    """golden_scores orders golden records best first and, on a tie, by golden id as text (as it always has;
    compared as UUIDs, whose order is their text's)."""
    defn = get_definition("customer")
    a = defn.prepare({"name": "Acme GmbH", "website": "acme.de", "country": "DE"})
    kwargs = {"comparisons": defn.comparisons, "hard_rules": defn.hard_rules, "prior": defn.prior, "a": a, "b": a}
    rng = random.Random(3)
    ids = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(200)] + [uuid.UUID(int=i) for i in (9, 10, 255, 256)]
    per_golden = {g: [score_pair(**kwargs)] for g in ids}  # all the same score
    other = defn.prepare({"name": "Zebra Ltd", "country": "GB"})
    per_golden[ids[-1]] = [score_pair(**{**kwargs, "b": other})]  # scored lower: last whatever its id
    ordered = [g.golden_id for g in golden_scores(defn, per_golden)]
    assert ordered == sorted(ids[:-1], key=str) + [ids[-1]]
