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
from collections.abc import Callable
from dataclasses import dataclass, field
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


@dataclass
class Scored:
    weight: float
    probability: float
    comparisons: list[FieldComparison] = field(default_factory=list)
    veto: str | None = None
    reason: str = ""


def probability(weight: float) -> float:
    if weight > 60:
        return 1.0
    if weight < -60:
        return 0.0
    odds = 2.0**weight
    return odds / (1.0 + odds)


def prior_weight(prior: float) -> float:
    return math.log2(prior / (1.0 - prior))


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
    """Score feature dicts `a` (the incoming record) and `b` (a candidate's source record)."""
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
