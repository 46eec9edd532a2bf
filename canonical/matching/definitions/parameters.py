"""m/u probabilities set from labelled pairs.

`estimate_from_labels` counts, over the true pairs of a labelled set, how often each comparison lands on each
level (m), and over random pairs of different entities the same (u), with add-one smoothing. The result is
stored as JSON beside this file (`<domain>.json`) and replaces the hand-set starting values of the definition.
Regenerate with `python -m canonical.matching.definitions.parameters DOMAIN FILE.csv` after a rule change.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import random
import sys
from collections import Counter, defaultdict
from functools import cache
from pathlib import Path

from ..scoring import Comparison, Level
from .common import MatchDefinition

M_FLOOR = 0.01
U_FLOOR = 0.000001
PARAMETER_DIR = Path(__file__).resolve().parent.parent / "parameters"


@cache
def _load(domain: str) -> dict | None:
    path = PARAMETER_DIR / f"{domain}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())


@cache
def _applied(defn: MatchDefinition) -> MatchDefinition:
    data = _load(defn.domain)
    if not data:
        return defn
    comparisons = []
    for comp in defn.comparisons:
        mu = data.get("comparisons", {}).get(comp.name, {})
        new_levels = tuple(
            Level(lvl.name, mu[lvl.name][0], mu[lvl.name][1], lvl.says) if lvl.name in mu else lvl
            for lvl in comp.levels
        )
        comparisons.append(dataclasses.replace(comp, levels=new_levels))
    prior = data.get("prior") or defn.prior
    return dataclasses.replace(defn, comparisons=tuple(comparisons), prior=prior)


def apply_parameters(defn: MatchDefinition) -> MatchDefinition:
    return _applied(defn)


def estimate_from_labels(
    defn: MatchDefinition, rows: list[dict], *, clusters: list[str], non_pairs: int = 200_000, seed: int = 7
) -> dict:
    """m/u per comparison level from labelled records (rows of canonical values, clusters[i] = entity of rows[i])."""
    features = [defn.prepare(r) for r in rows]
    by_cluster: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(clusters):
        by_cluster[c].append(i)
    m_counts: dict[str, Counter] = defaultdict(Counter)
    u_counts: dict[str, Counter] = defaultdict(Counter)

    def tally(target: dict[str, Counter], i: int, j: int) -> None:
        for comp in defn.comparisons:
            level, _, _ = comp.compare(features[i], features[j])
            if level is not None:
                target[comp.name][level] += 1

    for members in by_cluster.values():
        for x, i in enumerate(members):
            for j in members[x + 1 :]:
                tally(m_counts, i, j)
    rng = random.Random(seed)
    n = len(rows)
    drawn = 0
    while drawn < non_pairs and n > 1:
        i, j = rng.randrange(n), rng.randrange(n)
        if i != j and clusters[i] != clusters[j]:
            tally(u_counts, i, j)
            drawn += 1
    result: dict[str, dict[str, list[float]]] = {}
    for comp in defn.comparisons:
        if sum(m_counts[comp.name].values()) < 20 or sum(u_counts[comp.name].values()) < 20:
            continue  # too few labelled pairs to say: the hand-set values stay
        result[comp.name] = _smoothed(comp, m_counts[comp.name], u_counts[comp.name])
    true_pairs = sum(len(m) * (len(m) - 1) // 2 for m in by_cluster.values())
    prior = true_pairs / (n * (n - 1) / 2) if n > 1 else defn.prior
    return {"domain": defn.domain, "source": "labelled pairs", "prior": round(prior, 8), "comparisons": result}


def _smoothed(comp: Comparison, m: Counter, u: Counter) -> dict[str, list[float]]:
    """Add-one smoothing, then floors: no level is taken as impossible for a true pair (m ≥ M_FLOOR) or for a
    random pair (u ≥ U_FLOOR), so no single field can decide a pair on its own beyond what the floors allow."""
    k = len(comp.levels)
    m_total, u_total = sum(m.values()), sum(u.values())
    out = {}
    for lvl in comp.levels:
        out[lvl.name] = [
            round(max(M_FLOOR, (m[lvl.name] + 1) / (m_total + k)), 6),
            round(max(U_FLOOR, (u[lvl.name] + 0.1) / (u_total + 0.1 * k)), 8),
        ]
    return out


def main(argv: list[str]) -> None:  # pragma: no cover - a maintenance script
    import django

    django.setup()
    from canonical.domains import get_domain

    from . import get_definition

    domain, path = argv[1], argv[2]
    spec = get_domain(domain)
    _load.cache_clear()
    defn = get_definition(domain)
    with open(path, newline="", encoding="utf-8") as fh:
        reader = list(csv.DictReader(fh))
    rows = [{k: v for k, v in r.items() if spec.get(k) is not None and v != ""} for r in reader]
    clusters = [r["cluster"] for r in reader]
    data = estimate_from_labels(defn, rows, clusters=clusters)
    PARAMETER_DIR.mkdir(exist_ok=True)
    (PARAMETER_DIR / f"{domain}.json").write_text(json.dumps(data, indent=1) + "\n")
    print(json.dumps(data, indent=1))


if __name__ == "__main__":  # pragma: no cover
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")
    main(sys.argv)
