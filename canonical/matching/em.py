"""Unsupervised m/u estimation (expectation maximisation, as Splink does) and an in-memory run of a definition.

For a file of records with no labels:

1. u from random pairs: P(level | two records picked at random), which are nearly all different entities;
2. m and the match rate by EM over the comparison-level vectors of *blocked* pairs, in training sessions as
   Splink runs them: each session takes the pairs sharing a key of some key types (e.g. the date of birth)
   and leaves out of its likelihood the comparisons those keys make agree (they cannot be learnt from pairs
   selected for agreeing on them). E-step: each pair's match probability under the current m, u, λ; M-step:
   m = probability-weighted level frequencies, λ = mean probability. u stays fixed (Splink's default).
   Missing values are neutral. A comparison's m is the mean over the sessions that estimated it.
3. The prior a single incoming record is scored with is the expected number of matching pairs (the largest
   a session finds) over all pairs.

`run_definition` scores every blocked pair with the definition (its levels, hard rules, term frequencies
counted in the file) and joins pairs at or above the link probability into clusters (connected components),
which is how Splink clusters; the hub's incremental decision (review zone, coherence checks) is not applied.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter, defaultdict
from collections.abc import Iterable

from .definitions.common import Features, MatchDefinition
from .scoring import Level, probability, score_pair

M_FLOOR = 0.001
U_FLOOR = 0.000001


# Training sessions per domain: (blocking-key types, comparisons those keys make agree).
EM_SESSIONS: dict[str, tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]] = {
    "resource": (
        (("dob",), ("date of birth",)),
        (("nm",), ("first name", "last name")),
        (("pc",), ("address", "last name")),
    ),
    "customer": ((("d",), ("web domain",)), (("n",), ("name",)), (("ph",), ("phone",))),
    "legal_entity": ((("n",), ("name",)), (("pc",), ("address", "name"))),
}


def blocked_pairs(
    defn: MatchDefinition, features: list[Features], *, key_cap: int = 200, key_types: Iterable[str] | None = None
) -> set[tuple[int, int]]:
    """Index pairs (i < j) sharing at least one blocking key (of `key_types`, if given) held by at most `key_cap`
    records."""
    wanted = set(key_types) if key_types is not None else None
    by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, f in enumerate(features):
        for key in defn.keys(f):
            if wanted is None or key[0] in wanted:
                by_key[key].append(i)
    pairs: set[tuple[int, int]] = set()
    for members in by_key.values():
        if len(members) < 2 or len(members) > key_cap:
            continue
        for x, i in enumerate(members):
            for j in members[x + 1 :]:
                pairs.add((i, j) if i < j else (j, i))
    return pairs


def level_vector(defn: MatchDefinition, a: Features, b: Features) -> tuple[str | None, ...]:
    return tuple(comp.compare(a, b)[0] for comp in defn.comparisons)


def u_from_random_pairs(
    defn: MatchDefinition, features: list[Features], *, pairs: int = 100_000, seed: int = 1
) -> dict[str, dict[str, float]]:
    """u per comparison level from random pairs (with a little smoothing so no level is impossible)."""
    rng = random.Random(seed)
    n = len(features)
    counts: dict[str, Counter] = defaultdict(Counter)
    for _ in range(pairs if n > 1 else 0):
        i, j = rng.randrange(n), rng.randrange(n)
        if i == j:
            continue
        for comp, level in zip(defn.comparisons, level_vector(defn, features[i], features[j]), strict=True):
            if level is not None:
                counts[comp.name][level] += 1
    out: dict[str, dict[str, float]] = {}
    for comp in defn.comparisons:
        total = sum(counts[comp.name].values())
        if total < 100:
            continue  # the file hardly has this field: keep the definition's values
        k = len(comp.levels)
        out[comp.name] = {
            lvl.name: max(U_FLOOR, (counts[comp.name][lvl.name] + 0.1) / (total + 0.1 * k)) for lvl in comp.levels
        }
    return out


def expectation_maximisation(
    defn: MatchDefinition,
    vectors: list[tuple[str | None, ...]],
    u: dict[str, dict[str, float]],
    *,
    iterations: int = 30,
    tolerance: float = 1e-5,
    held_out: Iterable[str] = (),
) -> tuple[dict[str, dict[str, float]], float]:
    """m per comparison level and λ (the match rate among the vectors' pairs), u held fixed; comparisons in
    `held_out` take no part (their m comes back as the definition's)."""
    skip = set(held_out)
    vectors = [
        tuple(None if c.name in skip else v for c, v in zip(defn.comparisons, vec, strict=True)) for vec in vectors
    ]
    comps = defn.comparisons
    m = {c.name: {lvl.name: lvl.m for lvl in c.levels} for c in comps}
    uu = {c.name: u.get(c.name) or {lvl.name: lvl.u for lvl in c.levels} for c in comps}
    distinct = Counter(vectors)  # far fewer distinct vectors than pairs
    lam = 0.1
    for _ in range(iterations):
        m_acc: dict[str, Counter] = {c.name: Counter() for c in comps}
        total_p = 0.0
        for vector, count in distinct.items():
            log_odds = math.log2(lam / (1 - lam))
            for comp, level in zip(comps, vector, strict=True):
                if level is not None:
                    log_odds += math.log2(m[comp.name][level] / uu[comp.name][level])
            p = probability(log_odds)
            total_p += p * count
            for comp, level in zip(comps, vector, strict=True):
                if level is not None:
                    m_acc[comp.name][level] += p * count
        new_lam = min(max(total_p / max(len(vectors), 1), 1e-9), 1 - 1e-9)
        change = abs(new_lam - lam)
        lam = new_lam
        for comp in comps:
            if comp.name in skip:
                continue
            acc = m_acc[comp.name]
            total = sum(acc.values())
            if total <= 0:
                continue
            for lvl in comp.levels:
                new = max(M_FLOOR, acc[lvl.name] / total)
                change = max(change, abs(new - m[comp.name][lvl.name]))
                m[comp.name][lvl.name] = new
        if change < tolerance:
            break
    return m, lam


def estimate_parameters(defn: MatchDefinition, features: list[Features], *, key_cap: int = 200, seed: int = 1) -> dict:
    """EM-estimated parameters of `defn` for this file, in the parameters-JSON shape (see definitions/parameters.py)."""
    u = u_from_random_pairs(defn, features, seed=seed)
    n = len(features)
    all_pairs = n * (n - 1) / 2 if n > 1 else 1
    sessions = EM_SESSIONS.get(defn.domain) or (((), ()),)
    estimates: dict[str, list[dict[str, float]]] = defaultdict(list)
    expected_matches = 0.0
    trained = []
    for key_types, held_out in sessions:
        pairs = blocked_pairs(defn, features, key_cap=key_cap, key_types=key_types or None)
        if len(pairs) < 50:
            continue
        vectors = [level_vector(defn, features[i], features[j]) for i, j in pairs]
        m, lam = expectation_maximisation(defn, vectors, u, held_out=held_out)
        expected_matches = max(expected_matches, lam * len(pairs))
        trained.append({"keys": list(key_types), "pairs": len(pairs), "match_rate": round(lam, 6)})
        for comp in defn.comparisons:
            if comp.name not in held_out:
                estimates[comp.name].append(m[comp.name])
    comparisons = {}
    for c in defn.comparisons:
        found = estimates.get(c.name)
        comparisons[c.name] = {
            lvl.name: [
                round(sum(e[lvl.name] for e in found) / len(found) if found else lvl.m, 6),
                round((u.get(c.name) or {}).get(lvl.name, lvl.u), 8),
            ]
            for lvl in c.levels
        }
    return {
        "domain": defn.domain,
        "source": "expectation maximisation",
        "prior": min(max(expected_matches / all_pairs, 1e-9), 0.5) if expected_matches else defn.prior,
        "sessions": trained,
        "comparisons": comparisons,
    }


def with_parameters(defn: MatchDefinition, params: dict) -> MatchDefinition:
    """`defn` with the m/u (and prior) of `params` in place of its own."""
    comparisons = []
    for comp in defn.comparisons:
        mu = params.get("comparisons", {}).get(comp.name, {})
        comparisons.append(
            dataclasses.replace(
                comp,
                levels=tuple(
                    Level(lvl.name, mu[lvl.name][0], mu[lvl.name][1], lvl.says) if lvl.name in mu else lvl
                    for lvl in comp.levels
                ),
            )
        )
    return dataclasses.replace(defn, comparisons=tuple(comparisons), prior=params.get("prior") or defn.prior)


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def run_definition(
    defn: MatchDefinition,
    features: list[Features],
    *,
    key_cap: int = 200,
    pairs: Iterable[tuple[int, int]] | None = None,
    min_tf_population: int = 1000,
) -> list[int]:
    """Cluster label per record: blocked pairs scored with `defn`, linked at `defn.link_probability` or above."""
    n = len(features)
    counts: Counter = Counter()
    for f in features:
        counts.update(defn.keys(f))

    def tf(key_type: str, value: str) -> float | None:
        if n < min_tf_population:
            return None
        return max(counts.get((key_type, value[:255]), 1), 1) / n

    parent = list(range(n))
    for i, j in pairs if pairs is not None else blocked_pairs(defn, features, key_cap=key_cap):
        scored = score_pair(
            comparisons=defn.comparisons,
            hard_rules=defn.hard_rules,
            prior=defn.prior,
            a=features[i],
            b=features[j],
            tf=tf,
        )
        if scored.veto is None and scored.probability >= defn.link_probability:
            ri, rj = _find(parent, i), _find(parent, j)
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)
    return [_find(parent, i) for i in range(n)]
