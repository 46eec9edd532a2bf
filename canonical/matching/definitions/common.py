"""Comparator building blocks shared by the domain definitions."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz
from rapidfuzz.distance import JaroWinkler, Levenshtein

from ..normalize import house_number
from ..scoring import Comparison, HardRule, Level

Features = dict[str, Any]


@dataclass(frozen=True)
class MatchDefinition:
    """Everything about matching one domain, in one place."""

    domain: str
    noun: str
    prepare: Callable[[dict], Features]
    keys: Callable[[Features], list[tuple[str, str]]]
    comparisons: tuple[Comparison, ...]
    hard_rules: tuple[HardRule, ...] = ()
    prior: float = 1e-4  # P(two records picked at random are the same entity), before any evidence
    link_probability: float = 0.99  # at or above: link automatically
    review_probability: float = 0.5  # at or above (and below link): a steward decides
    doubt_probability: float = 0.001  # a member of the golden record scoring below this makes the link doubtful
    personal: frozenset[str] = frozenset()  # comparisons whose values are personal data (shown with read:personal)
    # Identifiers the domain trusts: an exact one links when nothing else makes the pair unlikely (p ≥ review).
    identifiers: frozenset[str] = frozenset()


def jw(a: str, b: str) -> float:
    return JaroWinkler.normalized_similarity(a, b)


def text_similarity(a: str, b: str) -> float:
    """Best of Jaro-Winkler on the whole string and token-sort ratio (word order does not matter)."""
    return max(jw(a, b), fuzz.token_sort_ratio(a, b) / 100.0)


def levels(*items: tuple[str, float, float, str]) -> tuple[Level, ...]:
    return tuple(Level(name, m, u, says) for name, m, u, says in items)


def exact_or_different(
    name: str, feature: str, *, m: float, u: float, says: str, m_diff: float = 0.05, typo: bool = False
) -> Comparison:
    """Identifiers: exact, (optionally) one typo apart, or different."""
    items = [("exact", m, u, f"same {says}")]
    if typo:
        items.append(("one typo apart", 0.1, u * 5, f"{says} one typo apart"))
    items.append(("different", m_diff, 1 - u * (6 if typo else 1), f"different {says}"))

    def compare(a: Features, b: Features) -> tuple[str | None, Any, Any]:
        va, vb = a.get(feature), b.get(feature)
        if not va or not vb:
            return None, va, vb
        if va == vb:
            return "exact", va, vb
        if typo and Levenshtein.distance(str(va), str(vb), score_cutoff=1) <= 1:
            return "one typo apart", va, vb
        if typo and len(str(va)) == len(str(vb)) and _one_transposition(str(va), str(vb)):
            return "one typo apart", va, vb
        return "different", va, vb

    return Comparison(name, levels(*items), compare)


def _one_transposition(a: str, b: str) -> bool:
    diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]


def fuzzy_text(
    name: str,
    feature: str,
    *,
    says: str,
    exact: tuple[float, float],
    similar: tuple[float, float],
    somewhat: tuple[float, float],
    different: tuple[float, float],
    thresholds: tuple[float, float] = (0.92, 0.80),
    tf_key: str | None = None,
) -> Comparison:
    """Free text: exact, similar (≥ first threshold), somewhat similar (≥ second), different."""

    def compare(a: Features, b: Features) -> tuple[str | None, Any, Any]:
        va, vb = a.get(feature), b.get(feature)
        if not va or not vb:
            return None, va, vb
        if va == vb:
            return "exact", va, vb
        sim = text_similarity(va, vb)
        if sim >= thresholds[0]:
            return "similar", va, vb
        if sim >= thresholds[1]:
            return "somewhat similar", va, vb
        return "different", va, vb

    return Comparison(
        name,
        levels(
            ("exact", *exact, f"same {says}"),
            ("similar", *similar, f"similar {says}"),
            ("somewhat similar", *somewhat, f"somewhat similar {says}"),
            ("different", *different, f"different {says}"),
        ),
        compare,
        tf_key=tf_key,
        tf_feature=feature if tf_key else None,
    )


def date_comparison(name: str, feature: str, *, says: str) -> Comparison:
    """Dates: exact, one typo (a digit, a transposition or day/month swapped), same year, different."""

    def compare(a: Features, b: Features) -> tuple[str | None, Any, Any]:
        va, vb = a.get(feature), b.get(feature)
        if not va or not vb:
            return None, va, vb
        if va == vb:
            return "exact", va, vb
        da, db = va.replace("-", ""), vb.replace("-", "")
        if Levenshtein.distance(da, db, score_cutoff=1) <= 1 or (
            len(da) == len(db) == 8
            and (_one_transposition(da, db) or (da[:4] == db[:4] and da[4:6] == db[6:8] and da[6:8] == db[4:6]))
        ):
            return "one typo apart", va, vb
        if da[:4] == db[:4]:
            return "same year", va, vb
        return "different", va, vb

    return Comparison(
        name,
        levels(
            ("exact", 0.85, 0.0003, f"same {says}"),
            ("one typo apart", 0.09, 0.003, f"{says} one typo apart"),
            ("same year", 0.02, 0.02, f"{says} in the same year"),
            ("different", 0.04, 0.9767, f"different {says}"),
        ),
        compare,
    )


def any_overlap(name: str, feature: str, *, m: float, u: float, says: str, m_diff: float = 0.1) -> Comparison:
    """Sets of values (web domains from website and e-mail): any shared value, or none."""

    def compare(a: Features, b: Features) -> tuple[str | None, Any, Any]:
        va, vb = a.get(feature) or (), b.get(feature) or ()
        if not va or not vb:
            return None, ", ".join(va) or None, ", ".join(vb) or None
        shared = sorted(set(va) & set(vb))
        level = "exact" if shared else "different"
        return level, ", ".join(va), ", ".join(vb)

    return Comparison(
        name,
        levels(("exact", m, u, f"same {says}"), ("different", m_diff, 1 - u, f"different {says}")),
        compare,
    )


def address_similarity(a: str, b: str) -> float:
    """Street lines: edit-distance ratio on sorted words (no prefix bonus: 'rue de…' and 'rue du…' are not alike)."""
    return fuzz.token_sort_ratio(a, b) / 100.0


def location_comparison(*, says: str = "address") -> Comparison:
    """Street address, postal code and city together (they are not independent evidence, so one comparison):
    same street address (same house number), the same street and city with another postal code (records
    corrupted in more than one field: febrl), same postal code, postal code one typo apart (one digit wrong or
    two neighbouring digits swapped) in the same city, or elsewhere, same city, different."""

    def compare(a: Features, b: Features) -> tuple[str | None, Any, Any]:
        shown_a = ", ".join(x for x in (a.get("address"), a.get("postal"), a.get("city")) if x) or None
        shown_b = ", ".join(x for x in (b.get("address"), b.get("postal"), b.get("city")) if x) or None
        pa, pb = a.get("postal"), b.get("postal")
        ca, cb = a.get("city"), b.get("city")
        sa, sb = a.get("address"), b.get("address")
        postal_known = bool(pa and pb)
        postal_same = postal_known and pa == pb
        city_known = bool(ca and cb)
        city_same = city_known and (ca == cb or jw(ca, cb) >= 0.9)
        if sa and sb and house_number(sa) == house_number(sb) and address_similarity(sa, sb) >= 0.85:
            if (postal_same or not postal_known) and (city_same or not city_known):
                return "same street address", shown_a, shown_b
            if postal_known and not postal_same and (city_same or not city_known):
                return "same street, other postal code", shown_a, shown_b  # a mistyped or outdated code
        if postal_same:
            return "same postal code", shown_a, shown_b
        if (
            postal_known
            and len(pa) == len(pb)
            and (Levenshtein.distance(pa, pb, score_cutoff=1) <= 1 or _one_transposition(pa, pb))
        ):
            if city_same:
                return "postal code one typo apart, same city", shown_a, shown_b
            return "postal code one typo apart", shown_a, shown_b  # a digit wrong, or two swapped
        if city_same and not postal_known:
            return "same city", shown_a, shown_b
        if postal_known or city_known:
            return "different", shown_a, shown_b
        return None, shown_a, shown_b

    return Comparison(
        says,
        levels(
            ("same street address", 0.6, 0.0005, f"same {says}"),
            ("same street, other postal code", 0.03, 0.00005, "same street and house number, other postal code"),
            ("same postal code", 0.2, 0.003, "same postal code"),
            ("postal code one typo apart, same city", 0.03, 0.0005, "same city, postal code one typo apart"),
            ("postal code one typo apart", 0.05, 0.005, "postal code one typo apart"),
            ("same city", 0.1, 0.05, "same city"),
            ("different", 0.05, 0.942, f"different {says}"),
        ),
        compare,
    )


def _digits(text: str) -> list[str]:
    return re.findall(r"\d+", text)


def company_name_comparison(feature: str = "name_core", tf_key: str = "n") -> Comparison:
    """Company names after legal forms, transliteration and abbreviations: exact, acronym, similar, different."""

    def compare(a: Features, b: Features) -> tuple[str | None, Any, Any]:
        va, vb = a.get(feature), b.get(feature)
        if not va or not vb:
            return None, va, vb
        if va == vb:
            return "exact", va, vb
        if _digits(va) != _digits(vb):  # "Fund 1" and "Fund 2", "Customer 7" and "Customer 8"
            return "different", va, vb
        ta, tb = a.get("name_tokens") or (), b.get("name_tokens") or ()
        if ta and ta == tb:
            return "similar", va, vb  # the same but for words like "group" or "the"
        if (a.get("acronym") and a["acronym"] == vb.replace(" ", "")) or (
            b.get("acronym") and b["acronym"] == va.replace(" ", "")
        ):
            return "acronym", va, vb
        sa, sb = " ".join(ta) or va, " ".join(tb) or vb
        sim = max(text_similarity(va, vb), text_similarity(sa, sb))
        if sim >= 0.92:
            return "similar", va, vb
        if sim >= 0.80 or (ta and tb and (set(ta) <= set(tb) or set(tb) <= set(ta))):
            return "somewhat similar", va, vb
        return "different", va, vb

    return Comparison(
        "name",
        levels(
            ("exact", 0.70, 0.0005, "same name"),
            ("acronym", 0.02, 0.0001, "one name is the other's acronym"),
            ("similar", 0.20, 0.002, "similar name"),
            ("somewhat similar", 0.06, 0.01, "somewhat similar name"),
            ("different", 0.02, 0.9875, "different name"),
        ),
        compare,
        tf_key=tf_key,
        tf_feature=feature,
    )


def token_key(prefix: str, token: str | None) -> tuple[str, str] | None:
    return (prefix, token[:255]) if token else None


def compact_keys(keys: list[tuple[str, str] | None]) -> list[tuple[str, str]]:
    """Drop empty keys and duplicates, keep order; key values fit the index column."""
    seen: dict[tuple[str, str], None] = {}
    for key in keys:
        if key and key[1]:
            seen.setdefault((key[0], key[1][:255]), None)
    return list(seen)
