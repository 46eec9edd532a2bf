"""The matcher's memo of candidates' prepared features (canonical/matching/fuzzy.py `_PreparedCache`): a tier of
entries as they are and a tier of packed (pickled) ones behind it."""

from __future__ import annotations

import dataclasses
import json

from canonical.matching.definitions import get_definition
from canonical.matching.definitions.common import LOCATION_DATA, name_data_key
from canonical.matching.fuzzy import _PreparedCache
from canonical.matching.scoring import scorer_for

ACME = {
    "name": "Acme Holdings GmbH",
    "website": "https://www.acme-holdings.de",
    "phone": "+49 30 1234567",
    "address_line1": "Unter den Linden 5",
    "postal_code": "10115",
    "city": "Berlin",
    "country": "DE",
}


def _values(i: int) -> dict:
    return {**ACME, "name": f"Acme {i} Holdings GmbH", "phone": f"+49 30 12345{i:02d}"}


def _counting(domain: str = "customer"):
    defn = get_definition(domain)
    calls: list[dict] = []

    def prepare(values):
        calls.append(values)
        return defn.prepare(values)

    return dataclasses.replace(defn, prepare=prepare), calls


def test_an_entry_pushed_out_of_the_first_tier_comes_back_unpacked_as_prepare_made_it_without_preparing_again():
    defn, calls = _counting()
    cache = _PreparedCache(2, 10)
    texts = [json.dumps(_values(i)) for i in range(3)]
    first = cache.get_text(defn, texts[0], json.loads)
    cache.get_text(defn, texts[1], json.loads)
    cache.get_text(defn, texts[2], json.loads)  # the first entry goes to the packed tier
    assert len(cache.entries) == 2 and len(cache.packed) == 1 and len(cache) == 3
    assert len(calls) == 3

    again = cache.get_text(defn, texts[0], json.loads)
    assert len(calls) == 3  # unpacked, not prepared again
    assert again is not first and again == first == get_definition("customer").prepare(_values(0))
    # the parts the comparisons check by identity are still the record's own values
    assert again[LOCATION_DATA][0] is again["address"]
    assert again[name_data_key("name_core")][0] is again["name_core"]
    # back in the first tier, and still packed; the oldest of the first tier went packed too
    assert (defn.domain, "text", texts[0]) in cache.entries and len(cache.packed) == 2 and len(cache) == 3

    # scored against another record, the unpacked entry decides exactly as the freshly prepared one
    customer = get_definition("customer")
    scorer = scorer_for(customer.comparisons, customer.hard_rules, customer.prior, customer.noun)
    other = get_definition("customer").prepare({**ACME, "name": "ACME Holdings", "phone": None})
    fresh, unpacked = scorer.score(other, first, None), scorer.score(other, again, None)
    assert unpacked.weight == fresh.weight
    assert [(c.level, c.value_b) for c in unpacked.comparisons] == [(c.level, c.value_b) for c in fresh.comparisons]
    assert unpacked.reason == fresh.reason


def test_both_tiers_are_bounded_and_what_falls_out_of_the_second_is_prepared_again():
    defn, calls = _counting()
    cache = _PreparedCache(3, 5)
    texts = [json.dumps(_values(i)) for i in range(20)]
    for text in texts:
        cache.get_text(defn, text, json.loads)
    assert len(cache.entries) == 3 and len(cache.packed) == 5
    assert len(calls) == 20
    cache.get_text(defn, texts[12], json.loads)  # the oldest packed one: unpacked
    assert len(calls) == 20
    cache.get_text(defn, texts[0], json.loads)  # long gone: prepared again
    assert len(calls) == 21
    assert len(cache.entries) == 3 and len(cache.packed) <= 5


def test_without_a_packed_tier_what_falls_out_is_gone():
    defn, calls = _counting()
    cache = _PreparedCache(2, 0)
    texts = [json.dumps(_values(i)) for i in range(4)]
    for text in texts:
        cache.get_text(defn, text, json.loads)
    assert not cache.packed and len(cache.entries) == 2
    cache.get_text(defn, texts[0], json.loads)
    assert len(calls) == 5


def test_features_given_for_a_text_leave_an_entry_in_either_tier_as_it_is():
    defn, calls = _counting()
    cache = _PreparedCache(1, 4)
    a, b = json.dumps(_values(1)), json.dumps(_values(2))
    made = cache.get_text(defn, a, json.loads)
    cache.get_text(defn, b, json.loads)  # a is packed now
    cache.put_text(defn, a, {"not": "these"})
    assert cache.get_text(defn, a, json.loads) == made
    cache.put_text(defn, a, {"not": "these either"})  # in the first tier now
    assert cache.get_text(defn, a, json.loads) is cache.entries[(defn.domain, "text", a)] == made
    c = json.dumps(_values(3))
    given = get_definition("customer").prepare(_values(3))
    cache.put_text(defn, c, given)
    assert cache.get_text(defn, c, json.loads) is given
    assert len(calls) == 2


def test_a_text_key_and_a_values_key_never_share_a_packed_entry():
    """get() (values, by their sorted JSON) and get_text() (the database's JSON text) keep apart in both tiers."""
    defn, calls = _counting()
    cache = _PreparedCache(1, 10)
    values = _values(7)
    text = json.dumps(values, sort_keys=True)
    cache.get(defn, values)
    cache.get_text(defn, text, json.loads)
    assert len(calls) == 2 and len(cache) == 2


def test_an_unpacked_entry_that_falls_out_again_is_not_packed_again():
    defn, calls = _counting()
    cache = _PreparedCache(1, 10)
    a, b = json.dumps(_values(1)), json.dumps(_values(2))
    cache.get_text(defn, a, json.loads)
    cache.get_text(defn, b, json.loads)  # a packed
    digest = _PreparedCache._digest((defn.domain, "text", a))
    packed = cache.packed[digest]
    for _ in range(3):
        cache.get_text(defn, a, json.loads)  # unpacked (b packed)
        cache.get_text(defn, b, json.loads)  # unpacked (a falls out: its packed form is the one it had)
        assert cache.packed[digest] is packed
    assert len(calls) == 2 and len(cache) == 2 and len(cache.packed) == 2
    # an entry whose packed form fell out of the second tier meanwhile is packed again when it falls out
    small = _PreparedCache(1, 1)
    small.get_text(defn, a, json.loads)
    small.get_text(defn, b, json.loads)  # a packed
    small.get_text(defn, a, json.loads)  # a unpacked, b packed: a's packed form goes (the second tier holds one)
    assert digest not in small.packed
    small.get_text(defn, b, json.loads)  # a falls out: packed again
    assert digest in small.packed and small.get_text(defn, a, json.loads) == defn.prepare(_values(1))


def test_a_touched_entry_given_again_becomes_the_most_recently_used():
    defn, calls = _counting()
    cache = _PreparedCache(2, 0)
    a, b, c = (json.dumps(_values(i)) for i in range(3))
    cache.get_text(defn, a, json.loads)
    cache.get_text(defn, b, json.loads)
    cache.put_text(defn, a, {"ignored": True})  # a is the most recently used now: b goes first
    cache.get_text(defn, c, json.loads)
    assert (defn.domain, "text", a) in cache.entries and (defn.domain, "text", b) not in cache.entries


def test_look_ups_from_many_threads_lose_nothing_and_keep_the_bounds():
    """Ingest runs in threads (the web server's): look-ups interleaving at every bytecode neither fail nor
    return another record's features, and both tiers stay within their bounds."""
    import sys
    import threading

    defn = get_definition("customer")
    cache = _PreparedCache(5, 12)
    texts = [json.dumps(_values(i)) for i in range(30)]
    expected = {text: defn.prepare(json.loads(text)) for text in texts}
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for n in range(400):
                text = texts[(n * 7 + offset) % len(texts)]
                if n % 5 == 0:
                    cache.put_text(defn, text, expected[text])
                assert cache.get_text(defn, text, json.loads) == expected[text]
                len(cache)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors[:3]
    assert len(cache.entries) <= 5 and len(cache.packed) <= 12


def test_the_process_cache_takes_both_tiers_sizes_from_the_environment(tmp_path):
    """MDM_MATCH_FEATURE_CACHE_HOT sizes the first tier (at least 1), MDM_MATCH_FEATURE_CACHE the packed one; unset,
    50,000 and 200,000."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    code = (
        "import django; django.setup(); from canonical.matching.fuzzy import prepared_cache as c; "
        "print('sizes', c.size, c.packed_size)"
    )

    def sizes(**env: str) -> list[str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("MDM_MATCH_FEATURE_CACHE")}
        environ.update(DJANGO_SETTINGS_MODULE="mdm.settings", DATABASE_URL=f"sqlite:///{tmp_path}/x.sqlite3", **env)
        run = subprocess.run([sys.executable, "-c", code], cwd=root, env=environ, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        return run.stdout.strip().splitlines()[-1].split()[1:]  # the last line: "sizes HOT PACKED"

    assert sizes() == ["50000", "200000"]
    assert sizes(MDM_MATCH_FEATURE_CACHE_HOT="123", MDM_MATCH_FEATURE_CACHE="7") == ["123", "7"]
    assert sizes(MDM_MATCH_FEATURE_CACHE_HOT="0", MDM_MATCH_FEATURE_CACHE="0") == ["1", "0"]
    assert sizes(MDM_MATCH_FEATURE_CACHE_HOT="-5", MDM_MATCH_FEATURE_CACHE="-5") == ["1", "0"]
