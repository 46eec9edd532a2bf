"""Unsupervised m/u estimation (EM) and the in-memory run of a definition, on generated unlabelled people."""

from __future__ import annotations

import random

from canonical.matching import em
from canonical.matching.definitions import get_definition

FIRST = "anna ben carla david emma felix greta hugo ida jonas karla leon mia noah olga paul rosa sven tina ugo".split()
LAST = (
    "meyer schulz novak berg lindqvist moreau rossi keller brandt fischer wagner becker hoffmann klein wolf "
    "neumann schwarz zimmermann braun kruger hartmann lange schmitt werner krause"
).split()


def _person(rng: random.Random) -> dict:
    return {
        "first_name": rng.choice(FIRST),
        "last_name": rng.choice(LAST),
        "date_of_birth": f"19{rng.randint(40, 99)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "national_id": str(rng.randrange(10**6, 10**7)),
        "postal_code": str(rng.randrange(1000, 9999)),
        "city": rng.choice(["sydney", "perth", "hobart", "darwin"]),
        "country": "AU",
    }


def _typo(rng: random.Random, text: str) -> str:
    i = rng.randrange(len(text) - 1)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]  # two neighbouring characters swapped


def _people(n: int, seed: int = 3) -> tuple[list[dict], list[int]]:
    """n people, each with one noisy duplicate (a typo or transposition in one or two fields)."""
    rng = random.Random(seed)
    rows, clusters = [], []
    for k in range(n):
        p = _person(rng)
        dup = dict(p)
        for name in rng.sample(["last_name", "postal_code", "national_id", "date_of_birth"], 2):
            dup[name] = _typo(rng, dup[name]) if name != "date_of_birth" else dup[name][:-1] + "9"
        rows += [p, dup]
        clusters += [k, k]
    return rows, clusters


def _pairwise_f1(labels: list[int], clusters: list[int]) -> float:
    n = len(labels)
    tp = fp = fn = 0
    for i in range(n):
        for j in range(i + 1, n):
            same_pred, same_true = labels[i] == labels[j], clusters[i] == clusters[j]
            tp += same_pred and same_true
            fp += same_pred and not same_true
            fn += same_true and not same_pred
    return 2 * tp / (2 * tp + fp + fn)


def test_transposed_postcode_digits_count_as_one_typo_apart():
    defn = get_definition("resource")
    address = next(c for c in defn.comparisons if c.name == "address")
    level, _, _ = address.compare({"postal": "2074", "city": "ascot"}, {"postal": "2704", "city": "ascot"})
    assert level == "postal code one typo apart, same city"
    level, _, _ = address.compare({"postal": "2074", "city": "ascot"}, {"postal": "2704", "city": "toowong"})
    assert level == "postal code one typo apart"
    level, _, _ = address.compare({"postal": "2074", "city": "ascot"}, {"postal": "4072", "city": "ascot"})
    assert level == "different"


def test_the_same_street_and_house_number_with_another_postal_code_is_its_own_level():
    # febrl corrupts several fields of one record: the street line survives a wrong postal code
    address = next(c for c in get_definition("resource").comparisons if c.name == "address")
    a = {"address": "5 wentworth avenue mt pleasant", "postal": "6743", "city": "toowoomba"}
    level, _, _ = address.compare(a, {**a, "address": "5 wentwort h avenue mt pleasant", "postal": "3585"})
    assert level == "same street, other postal code"
    level, _, _ = address.compare(a, {**a, "postal": "3585", "city": "perth"})
    assert level == "different"  # another city as well: not the same street
    level, _, _ = address.compare(a, {**a, "address": "7 wentworth avenue mt pleasant", "postal": "3585"})
    assert level == "different"  # another house number: not the same street address


def test_resource_records_at_the_same_house_number_and_postal_code_share_a_blocking_key():
    defn = get_definition("resource")
    a = defn.prepare(
        {"first_name": "Jacobie", "last_name": "Tilleq", "address_line1": "7 Studley Street", "postal_code": "4869"}
    )
    b = defn.prepare(
        {"first_name": "Blake", "last_name": "Moody", "address_line1": "7 Studley St", "postal_code": "4869"}
    )
    assert ("ad", "4869:7") in set(defn.keys(a)) & set(defn.keys(b))


def test_em_learns_that_agreeing_dates_of_birth_mean_the_same_person_from_unlabelled_records():
    defn = get_definition("resource")
    rows, _ = _people(300)
    features = [defn.prepare(r) for r in rows]
    params = em.estimate_parameters(defn, features)
    dob = params["comparisons"]["date of birth"]
    assert params["source"] == "expectation maximisation"
    assert dob["exact"][0] > 0.3  # m: most true pairs agree on the date of birth
    assert dob["exact"][0] / dob["exact"][1] > 100  # far likelier among matches than among random pairs
    assert dob["different"][0] < dob["different"][1]
    true_rate = 300 / (600 * 599 / 2)
    assert true_rate / 5 < params["prior"] < true_rate * 5
    assert [s["keys"] for s in params["sessions"]] == [["dob"], ["nm"], ["pc"]]


def test_a_comparison_held_out_of_an_em_session_keeps_the_definitions_m():
    defn = get_definition("resource")
    rows, _ = _people(100)
    features = [defn.prepare(r) for r in rows]
    pairs = sorted(em.blocked_pairs(defn, features, key_types=["dob"]))
    vectors = [em.level_vector(defn, features[i], features[j]) for i, j in pairs]
    m, _ = em.expectation_maximisation(defn, vectors, {}, held_out=["date of birth"])
    given = {lvl.name: lvl.m for lvl in next(c for c in defn.comparisons if c.name == "date of birth").levels}
    assert m["date of birth"] == given
    assert m["national id"] != {lvl.name: lvl.m for lvl in defn.comparisons[4].levels}


def test_the_definition_with_em_parameters_finds_the_duplicates_of_unlabelled_records():
    defn = get_definition("resource")
    rows, clusters = _people(300)
    features = [defn.prepare(r) for r in rows]
    trained = em.with_parameters(defn, em.estimate_parameters(defn, features))
    labels = em.run_definition(trained, features)
    assert _pairwise_f1(labels, clusters) >= 0.95
    assert trained.prior != defn.prior
