"""Comparator building blocks shared by the domain definitions."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, JaroWinkler, Levenshtein

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


_jaro_winkler = JaroWinkler.normalized_similarity  # jw() without the call through it, where pairs are scored
_ratio = fuzz.ratio


def jw(a: str, b: str) -> float:
    return JaroWinkler.normalized_similarity(a, b)


def text_similarity(a: str, b: str) -> float:
    """Best of Jaro-Winkler on the whole string and token-sort ratio (word order does not matter)."""
    return max(jw(a, b), fuzz.token_sort_ratio(a, b) / 100.0)


def sorted_words(text: str) -> str | None:
    """`text`'s words sorted and joined by single spaces, as rapidfuzz's token-sort ratio compares them, so a
    feature can hold it once instead of every pair sorting it again (`text` itself when that is the same). None
    for text that is not ASCII (rapidfuzz splits on its own idea of white space there: it is left to it)."""
    if not text.isascii():
        return None
    words = " ".join(sorted(text.split()))
    return text if words == text else words


def token_sort_similarity(a: str, b: str, sorted_a: str | None, sorted_b: str | None) -> float:
    """`fuzz.token_sort_ratio(a, b) / 100` from the words sorted beforehand (`sorted_words`), when both are."""
    if sorted_a is None or sorted_b is None:
        return fuzz.token_sort_ratio(a, b) / 100.0
    return fuzz.ratio(sorted_a, sorted_b) / 100.0


def within_one_edit_or_swap(a: str, b: str) -> bool:
    """One character inserted, deleted or replaced, or two neighbouring characters swapped (or equal): the
    optimal-string-alignment distance is at most 1. The same as Levenshtein distance ≤ 1 or, for strings of the
    same length, exactly two neighbouring positions differing by a swap."""
    return OSA.distance(a, b, score_cutoff=1) <= 1


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
        if typo and within_one_edit_or_swap(str(va), str(vb)):
            return "one typo apart", va, vb
        return "different", va, vb

    return Comparison(name, levels(*items), compare)


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
            and (within_one_edit_or_swap(da, db) or (da[:4] == db[:4] and da[4:6] == db[6:8] and da[6:8] == db[4:6]))
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

    key = set_data_key(feature)

    def compare(a: Features, b: Features) -> tuple[str | None, Any, Any]:
        va, vb = a.get(feature), b.get(feature)
        da, db = a.get(key), b.get(key)
        if da is None or da[0] is not va:
            da = set_data(va)
        if db is None or db[0] is not vb:
            db = set_data(vb)
        if not va or not vb:
            return None, da[1] or None, db[1] or None
        for value in va:
            if value in vb:
                return "exact", da[1], db[1]
        return "different", da[1], db[1]

    return Comparison(
        name,
        levels(("exact", m, u, f"same {says}"), ("different", m_diff, 1 - u, f"different {says}")),
        compare,
    )


def set_data_key(feature: str) -> str:
    """Where a feature dict holds `set_data` of `feature` (worked out once, when the record is prepared)."""
    return f"_{feature}_set"


def set_data(values: Any) -> tuple[Any, str]:
    """What `any_overlap` needs of a set of values besides them: the values it was made from, their display."""
    return values, ", ".join(values or ())


def address_similarity(a: str, b: str) -> float:
    """Street lines: edit-distance ratio on sorted words (no prefix bonus: 'rue de…' and 'rue du…' are not alike)."""
    return fuzz.token_sort_ratio(a, b) / 100.0


# Where a feature dict holds `location_data` of its address, postal code and city (worked out when prepared).
LOCATION_DATA = "_location"


def location_data(address: Any, postal: Any, city: Any) -> tuple:
    """What `location_comparison` needs of one side, worked out once per record rather than once per pair: the
    three values it was made from, the address shown, the house number and the address's sorted words."""
    shown = ", ".join(filter(None, (address, postal, city))) or None
    if not address:
        return address, postal, city, shown, None, None
    return address, postal, city, shown, house_number(address), sorted_words(address)


def location_comparison(*, says: str = "address") -> Comparison:
    """Street address, postal code and city together (they are not independent evidence, so one comparison):
    same street address (same house number), the same street and city with another postal code (records
    corrupted in more than one field: febrl), same postal code, postal code one typo apart (one digit wrong or
    two neighbouring digits swapped) in the same city, or elsewhere, same city, different."""

    def compare(a: Features, b: Features) -> tuple[str | None, Any, Any]:
        sa, pa, ca = a.get("address"), a.get("postal"), a.get("city")
        da = a.get(LOCATION_DATA)
        if da is None or da[0] is not sa or da[1] is not pa or da[2] is not ca:
            da = location_data(sa, pa, ca)
        sb, pb, cb = b.get("address"), b.get("postal"), b.get("city")
        db = b.get(LOCATION_DATA)
        if db is None or db[0] is not sb or db[1] is not pb or db[2] is not cb:
            db = location_data(sb, pb, cb)
        shown_a, shown_b = da[3], db[3]
        postal_known = bool(pa and pb)
        postal_same = postal_known and pa == pb
        city_known = bool(ca and cb)
        city_same = None  # worked out when needed: city_known and (ca == cb or jw(ca, cb) >= 0.9)
        if sa and sb and da[4] == db[4] and token_sort_similarity(sa, sb, da[5], db[5]) >= 0.85:
            city_same = city_known and (ca == cb or _jaro_winkler(ca, cb) >= 0.9)
            if (postal_same or not postal_known) and (city_same or not city_known):
                return "same street address", shown_a, shown_b
            if postal_known and not postal_same and (city_same or not city_known):
                return "same street, other postal code", shown_a, shown_b  # a mistyped or outdated code
        if postal_same:
            return "same postal code", shown_a, shown_b
        if postal_known and len(pa) == len(pb) and within_one_edit_or_swap(pa, pb):
            if city_same is None:
                city_same = city_known and (ca == cb or _jaro_winkler(ca, cb) >= 0.9)
            if city_same:
                return "postal code one typo apart, same city", shown_a, shown_b
            return "postal code one typo apart", shown_a, shown_b  # a digit wrong, or two swapped
        if not postal_known and city_known and (ca == cb or _jaro_winkler(ca, cb) >= 0.9):
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


_DIGIT_RUNS = re.compile(r"\d+")


def _digits(text: str) -> list[str]:
    return _DIGIT_RUNS.findall(text)


def name_data_key(feature: str) -> str:
    """Where a feature dict holds `name_data` of `feature` (worked out once, when the record is prepared)."""
    return f"_{feature}_name"


def name_data(core: str, tokens: tuple[str, ...] | None) -> tuple:
    """What `company_name_comparison` needs of one side, worked out once per record rather than once per pair:
    the core name and tokens it was made from, the name's digits, the name without spaces, the distinctive words
    joined (or the name), and both with their words sorted."""
    words = " ".join(tokens or ()) or core
    if words == core:
        words = core  # the same string held once
    sorted_core = sorted_words(core)
    return (
        core,
        tokens,
        tuple(_digits(core)),
        core.replace(" ", ""),
        words,
        sorted_core,
        sorted_core if words is core else sorted_words(words),
    )


def company_name_comparison(feature: str = "name_core", tf_key: str = "n") -> Comparison:
    """Company names after legal forms, transliteration and abbreviations: exact, acronym, similar, different."""

    key = name_data_key(feature)

    def compare(a: Features, b: Features) -> tuple[str | None, Any, Any]:
        va, vb = a.get(feature), b.get(feature)
        if not va or not vb:
            return None, va, vb
        if va == vb:
            return "exact", va, vb
        ta, tb = a.get("name_tokens"), b.get("name_tokens")
        da, db = a.get(key), b.get(key)
        if da is None or da[0] is not va or da[1] is not ta:
            da = name_data(va, ta)
        if db is None or db[0] is not vb or db[1] is not tb:
            db = name_data(vb, tb)
        if da[2] != db[2]:  # "Fund 1" and "Fund 2", "Customer 7" and "Customer 8"
            return "different", va, vb
        if ta and ta == tb:
            return "similar", va, vb  # the same but for words like "group" or "the"
        if (a.get("acronym") and a["acronym"] == db[3]) or (b.get("acronym") and b["acronym"] == da[3]):
            return "acronym", va, vb
        # the best of Jaro-Winkler and token-sort ratio, on the names and on their distinctive words
        sim = _jaro_winkler(va, vb)
        if sim >= 0.92:
            return "similar", va, vb
        # (token_sort_similarity written out: this is the hottest place)
        if da[5] is not None and db[5] is not None:
            words_sim = _ratio(da[5], db[5]) / 100.0
        else:
            words_sim = fuzz.token_sort_ratio(va, vb) / 100.0
        if words_sim > sim:
            sim = words_sim
        if sim >= 0.92:
            return "similar", va, vb
        sa, sb = da[4], db[4]
        if sa != va or sb != vb:  # else the same two strings again
            sim = max(sim, _jaro_winkler(sa, sb), token_sort_similarity(sa, sb, da[6], db[6]))
            if sim >= 0.92:
                return "similar", va, vb
        if sim >= 0.80 or (ta and tb and (set(ta) <= set(tb) or set(tb) <= set(ta))):
            return "somewhat similar", va, vb
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
