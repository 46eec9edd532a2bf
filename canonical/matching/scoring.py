"""A Fellegi–Sunter scorer: per-field comparison levels, each with m and u probabilities.

For a comparison level, m = P(level | same entity) and u = P(level | different entities); its weight is
log2(m / u) bits of evidence. A pair's match weight is the prior log-odds plus the sum of its field weights;
its match probability is 2^w / (1 + 2^w). A missing value on either side is neutral (weight 0).

Term-frequency adjustment (as Splink does it): on an exact level of a field with a frequency key, the level's
average u is replaced by the observed frequency of that value in the hub (so two "Smith"s count for less than
two "Zyzniewski"s). It only applies once the hub holds enough records for frequencies to mean something.

Hard rules veto a pair outright (two legal entities with different valid tax ids are never the same).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import FieldComparison

MIN_TF_POPULATION = 1000
TF_CLAMP = (-6.0, 3.0)


@dataclass(frozen=True)
class Level:
    name: str
    m: float
    u: float
    says: str = ""  # plain words for the reason line, e.g. "same tax id"

    @property
    def weight(self) -> float:
        return math.log2(self.m / self.u)


@dataclass(frozen=True)
class Comparison:
    """One field (or group of fields) compared: `compare(a, b)` → (level name or None if missing, shown A, shown B)."""

    name: str
    levels: tuple[Level, ...]
    compare: Callable[[dict, dict], tuple[str | None, Any, Any]]
    tf_key: str | None = None  # blocking-key type whose frequency adjusts the exact level
    tf_feature: str | None = None  # feature holding the value of that key

    def level(self, name: str) -> Level:
        for lvl in self.levels:
            if lvl.name == name:
                return lvl
        raise KeyError(f"{self.name} has no level {name!r}")


@dataclass(frozen=True)
class HardRule:
    """`check(a, b)` returns a plain reason when the pair can never be the same entity, else None."""

    name: str
    check: Callable[[dict, dict], str | None]


class Scored:
    """A scored pair: its match weight and probability (or the hard rule that vetoes it), and, built on first read,
    the per-field explanation (`comparisons`) and the reason line. Deciding needs only the weights, and most
    scored pairs are never shown, so the explanation waits until someone asks; it is built from what scoring
    recorded (each comparison's level, shown values and weight), so it is the same whenever it is read."""

    __slots__ = ("weight", "probability", "veto", "_comparisons", "_reason", "_scorer", "_results", "_weights")

    def __init__(
        self,
        weight: float,
        probability: float,
        comparisons: list[FieldComparison] | None = None,
        veto: str | None = None,
        reason: str = "",
    ) -> None:
        self.weight = weight
        self.probability = probability
        self.veto = veto
        self._comparisons = comparisons if comparisons is not None else []
        self._reason: str | None = reason
        self._scorer: Scorer | None = None
        self._results: list | None = None
        self._weights: list | None = None

    @classmethod
    def _recorded(
        cls, scorer: Scorer, weight: float, probability: float, veto: str | None, results: list, weights: list
    ) -> Scored:
        scored = cls.__new__(cls)
        scored.weight = weight
        scored.probability = probability
        scored.veto = veto
        scored._comparisons = None
        scored._reason = f"never the same: {veto}" if veto else None
        scored._scorer, scored._results, scored._weights = scorer, results, weights
        return scored

    @property
    def comparisons(self) -> list[FieldComparison]:
        if self._comparisons is None:
            self._comparisons = self._scorer.explanation(self._results, self._weights)
        return self._comparisons

    @comparisons.setter
    def comparisons(self, value: list[FieldComparison]) -> None:
        self._comparisons = value

    @property
    def reason(self) -> str:
        if self._reason is None:
            self._reason = reason_line(self, self._scorer.comparisons, noun=self._scorer.noun)
        return self._reason

    @reason.setter
    def reason(self, value: str) -> None:
        self._reason = value

    def exact_on(self, fields: frozenset[str] | set[str]) -> bool:
        """Whether one of these comparisons landed on an exact level (term-frequency adjusted or not)."""
        if self._results is None:
            return any(c.field in fields and c.level.startswith("exact") for c in self.comparisons)
        results = self._results
        for i in self._scorer.indexes(fields):
            level_name = results[i][0]
            if level_name is not None and level_name.startswith("exact"):
                return True
        return False

    def __repr__(self) -> str:
        return (
            f"Scored(weight={self.weight!r}, probability={self.probability!r}, comparisons={self.comparisons!r}, "
            f"veto={self.veto!r}, reason={self.reason!r})"
        )


def probability(weight: float) -> float:
    if weight > 60:
        return 1.0
    if weight < -60:
        return 0.0
    odds = 2.0**weight
    return odds / (1.0 + odds)


def prior_weight(prior: float) -> float:
    return math.log2(prior / (1.0 - prior))


class Scorer:
    """`score_pair` for one definition's comparisons, hard rules and prior, with each level's weight worked out
    once. `score(a, b, tf)` computes only what a decision needs (the comparisons' levels, the match weight,
    the veto) and records enough to build the explanation exactly as `score_pair` always has, if it is read."""

    def __init__(
        self, comparisons: tuple[Comparison, ...], hard_rules: tuple[HardRule, ...], prior: float, noun: str
    ) -> None:
        self.comparisons = comparisons
        self.hard_rules = hard_rules
        self.prior = prior
        self.noun = noun
        self.prior_weight = prior_weight(prior)
        self.names = tuple(comp.name for comp in comparisons)
        self.compares = tuple(comp.compare for comp in comparisons)
        # per comparison: level name → weight (None, a missing value, → None)
        self.weight_tables: tuple[dict[str | None, float | None], ...] = tuple(
            {None: None, **{lvl.name: lvl.weight for lvl in reversed(comp.levels)}}  # a name's first level wins
            for comp in comparisons
        )
        # the same with a missing value's weight as 0.0, paired with its compare, for score()'s one loop: adding
        # 0.0 leaves a sum as it is, bit for bit (x + 0.0 is x for every x but -0.0, which the sum never is)
        self._compare_sums = tuple(
            (compare, {**table, None: 0.0}) for compare, table in zip(self.compares, self.weight_tables, strict=True)
        )
        # the comparisons whose first level term frequencies adjust: (position, level, key, feature, its u)
        self.tf_items = tuple(
            (i, comp.levels[0].name, comp.tf_key, comp.tf_feature, comp.levels[0].u)
            for i, comp in enumerate(comparisons)
            if comp.tf_key and comp.levels
        )
        self.tf_levels = tuple((i, tf_level) for i, tf_level, *_ in self.tf_items)
        self.checks = tuple(rule.check for rule in hard_rules)
        self._indexes: dict[frozenset[str], tuple[int, ...]] = {}

    def indexes(self, fields: frozenset[str] | set[str]) -> tuple[int, ...]:
        """Positions of the comparisons with these names."""
        found = self._indexes.get(fields) if isinstance(fields, frozenset) else None
        if found is None:
            found = tuple(i for i, name in enumerate(self.names) if name in fields)
            if isinstance(fields, frozenset) and len(self._indexes) < 16:
                self._indexes[fields] = found
        return found

    def score(self, a: dict, b: dict, tf: Callable[[str, str], float | None] | None = None) -> Scored:
        # Each comparison, and the prior plus each field's weight from its level, in the comparisons' order: one
        # loop, as most pairs have no weight term frequencies adjust.
        results = []
        append = results.append
        total = self.prior_weight
        for compare, weights_of_levels in self._compare_sums:
            result = compare(a, b)  # a KeyError of compare's own comes through as it is
            append(result)
            try:
                total += weights_of_levels[result[0]]
            except KeyError:
                self._unknown_level(results)
                raise
        # each field's weight from its level, or (weight, adjustment) where term frequencies adjust it; kept for
        # the explanation only when one is adjusted (else the tables give them again)
        weights = None
        if tf is not None:
            for i, tf_level in self.tf_levels:
                if results[i][0] == tf_level:  # an exact level term frequencies may adjust
                    weights = self._adjusted(a, results, tf)
                    break
        if weights is not None:  # the sum again with the adjusted weights (rare: only exact levels), in order
            total = self.prior_weight
            for weight in weights:
                if weight is not None:
                    total += weight[0] if isinstance(weight, tuple) else weight
        for check in self.checks:
            veto = check(a, b)
            if veto:
                return Scored._recorded(self, -math.inf, 0.0, veto, results, weights)
        if total > 60:  # probability(total), written out
            p = 1.0
        elif total < -60:
            p = 0.0
        else:
            odds = 2.0**total
            p = odds / (1.0 + odds)
        return Scored._recorded(self, total, p, None, results, weights)

    def _adjusted(self, a: dict, results: list, tf: Callable[[str, str], float | None]) -> list | None:
        """Each field's weight with the term-frequency adjustments, or None if no field's weight is adjusted."""
        weights = None
        for i, tf_level, tf_key, tf_feature, u in self.tf_items:
            if results[i][0] == tf_level:
                value = a.get(tf_feature)
                if value:
                    u_tf = tf(tf_key, value)
                    if u_tf:
                        adjust = max(TF_CLAMP[0], min(TF_CLAMP[1], math.log2(u / u_tf)))
                        if abs(adjust) >= 0.05:
                            if weights is None:
                                weights = self.weights_of(results)
                            weights[i] = (weights[i] + adjust, adjust)
        return weights

    def weights_of(self, results: list) -> list[float | None]:
        """Each field's weight from its level (None where a value is missing), as the level tables give it."""
        try:
            return [table[result[0]] for table, result in zip(self.weight_tables, results, strict=True)]
        except KeyError:
            self._unknown_level(results)
            raise

    def _unknown_level(self, results: list) -> None:
        """Raise the KeyError naming the comparison whose compare() gave a level it does not have."""
        for comp, result in zip(self.comparisons, results, strict=False):  # score() passes those compared so far
            if result[0] is not None:
                comp.level(result[0])

    def explanation(self, results: list, weights: list | None) -> list[FieldComparison]:
        """The per-field explanation of a scored pair, as `score_pair` has always shown it."""
        if weights is None:
            weights = self.weights_of(results)
        fields = []
        for name, (level_name, shown_a, shown_b), weight in zip(self.names, results, weights, strict=True):
            if weight is None:
                fields.append(FieldComparison(name, shown_a, shown_b, "missing", 0.0))
            elif isinstance(weight, tuple):
                weight, adjust = weight
                label = f"{level_name} (term frequency {adjust:+.1f})"
                fields.append(FieldComparison(name, shown_a, shown_b, label, round(weight, 3)))
            else:
                fields.append(FieldComparison(name, shown_a, shown_b, level_name, round(weight, 3)))
        return fields


_SCORERS_SIZE = 64  # definitions in use (six domains; EM and evaluations make a few more)
_scorers: OrderedDict[int, tuple[tuple, Scorer]] = OrderedDict()


def scorer_for(
    comparisons: tuple[Comparison, ...], hard_rules: tuple[HardRule, ...], prior: float, noun: str = "record"
) -> Scorer:
    """The Scorer of these comparisons, hard rules, prior and noun (memoised by identity, at most _SCORERS_SIZE)."""
    key = id(comparisons)
    found = _scorers.get(key)
    if found is not None:
        held, scorer = found
        if held[0] is comparisons and held[1] is hard_rules and scorer.prior == prior and scorer.noun == noun:
            _scorers.move_to_end(key)
            return scorer
    scorer = Scorer(comparisons, hard_rules, prior, noun)
    _scorers[key] = ((comparisons, hard_rules), scorer)  # holding them keeps their ids from being reused
    if len(_scorers) > _SCORERS_SIZE:
        _scorers.popitem(last=False)
    return scorer


def score_pair(
    *,
    comparisons: tuple[Comparison, ...],
    hard_rules: tuple[HardRule, ...],
    prior: float,
    a: dict,
    b: dict,
    tf: Callable[[str, str], float | None] | None = None,
    noun: str = "record",
) -> Scored:
    """Score feature dicts `a` (the incoming record) and `b` (a candidate's source record).

    The weight, probability and veto are computed now; the per-field explanation and reason line when read."""
    return scorer_for(tuple(comparisons), tuple(hard_rules), prior, noun).score(a, b, tf)


def reason_line(scored: Scored, comparisons: tuple[Comparison, ...], *, noun: str) -> str:
    """One line in plain words: the verdict, then the strongest evidence for and against."""
    by_name = {c.name: c for c in comparisons}
    pros, cons = [], []
    for fc in sorted(scored.comparisons, key=lambda f: -abs(f.weight)):
        if fc.level == "missing" or abs(fc.weight) < 0.5:
            continue
        comp = by_name.get(fc.field)
        base_level = fc.level.split(" (")[0]
        says = comp.level(base_level).says if comp else ""
        text = says or f"{fc.field} {base_level}"
        (pros if fc.weight > 0 else cons).append(text)
    p = scored.probability
    verdict = "very likely the same" if p >= 0.99 else "likely the same" if p >= 0.9 else "possibly the same"
    if p < 0.5:
        verdict = "probably not the same"
    parts = [f"{verdict} {noun} (p={p:.3f})"]
    if pros:
        parts.append(", ".join(pros[:4]))
    if cons:
        parts.append("but " + ", ".join(cons[:3]))
    return ": ".join(parts[:2]) + ("; " + parts[2] if len(parts) > 2 else "")
