"""Explainable fuzzy matching: blocking from the MatchKey index, Fellegi–Sunter scoring, coherent decisions.

match() for one record:
1. its blocking keys (definitions/<domain>.py) are looked up in the MatchKey index, at most KEY_CAP rows per
   key; a key shared by more records than that is too common to block on (it still informs term frequencies);
2. the candidate golden records sharing keys of the most key types, then the rarest keys (at most
   MAX_CANDIDATES, chosen by content, never by their random ids: rank_candidates) are scored against each of
   their live source records; a golden record's score is its best-matching source record's;
3. decision: one golden record at or above the link threshold (or sharing an identifier the domain trusts,
   with nothing that makes the pair unlikely) whose members all look plausible → link;
   several above it (golden records that were not merged, so do not match each other), or a member that
   clearly is someone else (a chain A~B~C with A≁C), or a best score in the review zone → review;
   otherwise new.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import pickle
import threading
import time
import uuid
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction

from .base import Candidate, MatchOutcome, ScoredCandidate
from .definitions import MatchDefinition, get_definition
from .scoring import Scored, Scorer, scorer_for

KEY_CAP = 200
MAX_CANDIDATES = 16
_POPULATION_CACHE_FROM = 10_000  # below this, count live records every time (cheap, and exact)
_POPULATION_SECONDS = 300  # the shared count's lifetime: then it is counted again exactly (drift corrected)
# In-process memo in front of the shared count (a Redis round trip per match otherwise). This process's own writes
# move it at once (population_add); other processes' are seen when it is read again, so it is kept briefly.
_POPULATION_MEMO_SECONDS = 2.0
_population_memo: dict[str, tuple[float, int]] = {}
# Prepared features of candidate source records, by their stored values: the most recently used as they are
# (about 2.4 KiB an entry, its key included; settings.MDM_MATCH_FEATURE_CACHE_HOT entries, 50,000 by default: at
# most about 120 MiB), then more of them packed (pickled, under a 16-byte digest of the key: about 0.8 KiB an entry;
# settings.MDM_MATCH_FEATURE_CACHE entries, 200,000 by default: at most about 160 MiB). A candidate's features cost
# ~55 us to prepare (phone parsing, legal forms, domains): in a 98,599-record deduplication 1.08 million of 1.44
# million candidate look-ups prepared again with a first tier of 10,000 alone (every earlier record is a candidate
# sooner or later). Unpacking an entry takes ~3 us alone (measured 28 Nov 2026 on an Intel Xeon), but in a large
# load each packed hit avoided saved ~45 us of CPU (the unpacked objects are new to the collector and push a
# first-tier entry out): the same deduplication spent 134.5 s of CPU with 10,000 as they are (533,032 packed hits),
# 116.1 s with 50,000 (120,343), 115.0 s with 120,000 (none), peak RSS 413 / 535 / 512 MiB (docs/benchmarks.md).
PREPARED_CACHE_SIZE = 50_000
PREPARED_PACKED_SIZE = 200_000


_COMMON_KEYS_SECONDS = 300.0
_common_key_memo: dict[str, tuple[float, set[tuple[str, str]]]] = {}


def known_common_keys(domain: str) -> set[tuple[str, str]] | None:
    """The memo of keys too common to block on (`_common_keys`), only in a hub known to be big: None in a small
    one, which counts exactly every time (tests, small evaluations); no query. Record-by-record matching and the
    bulk path both ask this, so they skip the same keys.

    Inside `population_private` (an evaluation's rolled-back run) the memo is the run's own, under the same
    condition on the run's own population: its keys are not the hub's, so it neither reads nor fills the
    process's memo; and only the run writes them, so its memo lasts as long as the run."""
    private = _private_population.get()
    if private is not None and domain in private:
        count = private[domain]
        if count is None or count < _POPULATION_CACHE_FROM:
            return None
        return _private_common_keys.get()[domain]
    memo = _population_memo.get(population_cache_key(domain))
    return _common_keys(domain) if memo and memo[1] >= _POPULATION_CACHE_FROM else None


def common_keys_forget(domain: str, before: set, after: set) -> None:
    """A source record's MatchKey rows went from `before` to `after` ((key_type, key_value, golden_id) each): a key
    that lost a row may no longer be too common to block on, so the memo forgets it and the next match counts it
    again (the memo holds only keys found common, which only removals undo)."""
    lost = {(t, v) for t, v, _ in before} - {(t, v) for t, v, _ in after}
    if not lost:
        return
    # from the memo itself, whether or not it is in use now (a hub, or a run, below the size it is used from may
    # grow back above it: the keys it lost rows from meanwhile must not be skipped then)
    private = _private_population.get()
    if private is not None and domain in private:
        memo = _private_common_keys.get()[domain]
    else:
        held = _common_key_memo.get(domain)
        memo = held[1] if held is not None else None
    if memo:
        memo.difference_update(lost)


def _common_keys(domain: str) -> set[tuple[str, str]]:
    """Keys this process found shared by more than KEY_CAP records in the last few minutes ('ac:ibm', the first
    four letters of common names): they are skipped for blocking anyway, so their KEY_CAP + 1 rows are not
    fetched again. A key only becomes rare again when it loses rows, and those writers make the memo forget it
    (`common_keys_forget`); the few minutes bound what other processes' removals leave unseen."""
    now = time.monotonic()
    memo = _common_key_memo.get(domain)
    if memo is None or now - memo[0] > _COMMON_KEYS_SECONDS:
        memo = _common_key_memo[domain] = (now, set())
    return memo[1]


class _PreparedCache:
    """defn.prepare(stored) memoised by (domain, the stored values as JSON): normalising a candidate (legal forms,
    phone parsing, transliteration) costs more than scoring it, and the same golden records come back as
    candidates again and again. Keyed by content, so an updated source record is simply a new entry.

    Two tiers, least recently used first out of each: `size` entries as they are, and `packed_size` entries
    pickled (what falls out of the first tier). Pickling keeps which objects inside one entry are the same object,
    so an unpacked entry is prepare()'s result in every respect the comparisons look at (equality and the `is`
    checks of their memoised parts). A packed entry is found by a 16-byte BLAKE2b digest of its key, so the key's
    text is not held twice; a packed entry found is unpacked into the first tier and stays packed too (as the
    most recently used of the second), so it is not packed again when it falls out of the first."""

    def __init__(self, size: int, packed_size: int = 0) -> None:
        self.size = size
        self.packed_size = packed_size
        self.entries: OrderedDict[tuple[str, str], dict] = OrderedDict()
        self.packed: OrderedDict[bytes, bytes] = OrderedDict()
        # digests of first-tier entries unpacked from the second, whose packed form is kept: packed once, not again
        # each time one falls out of the first tier (entries come back again and again)
        self._unpacked: dict[tuple, bytes] = {}
        # one look-up at a time: ingest runs in threads (the web server's, concurrent API calls), and a look-up is
        # several steps on the two tiers
        self._lock = threading.RLock()  # re-entrant: make() may, one day, look something up itself

    @staticmethod
    def _digest(key: tuple) -> bytes:
        return hashlib.blake2b("\x00".join(key).encode(), digest_size=16).digest()

    def _memo(self, key: tuple, make) -> dict:
        """The entry under `key`, made by `make()` the first time; the least recently used goes past `size`."""
        with self._lock:
            found = self.entries.get(key)
            if found is not None:
                self.entries.move_to_end(key)
                return found
            packed = digest = None
            if self.packed:
                digest = self._digest(key)
                packed = self.packed.get(digest)
            if packed is None:
                return self._insert(key, make())
            features = pickle.loads(packed)
            self.packed.move_to_end(digest)  # before the insertion: what it pushes into the second tier goes after
            self._insert(key, features)
            self._unpacked[key] = digest
            return features

    def _insert(self, key: tuple, features: dict) -> dict:
        """Into the first tier (most recently used), its least recently used entry out past `size`."""
        self.entries[key] = features
        if len(self.entries) > self.size:
            self._evict()
        return features

    def _evict(self) -> None:
        old_key, old = self.entries.popitem(last=False)
        digest = self._unpacked.pop(old_key, None)
        if self.packed_size <= 0 or (digest is not None and digest in self.packed):
            return
        self.packed[digest or self._digest(old_key)] = pickle.dumps(old, protocol=pickle.HIGHEST_PROTOCOL)
        if len(self.packed) > self.packed_size:
            self.packed.popitem(last=False)

    def get(self, defn: MatchDefinition, stored: dict) -> dict:
        key = (defn.domain, json.dumps(stored, sort_keys=True, default=str))
        return self._memo(key, lambda: defn.prepare(stored))

    def get_text(self, defn: MatchDefinition, text: str, decode) -> dict:
        """defn.prepare(decode(text)) for stored values read as JSON text (as the database writes them out: equal
        texts, equal values), memoised by that text without decoding it again."""
        key = (defn.domain, "text", text)  # a key of its own kind: never one of get()'s
        return self._memo(key, lambda: defn.prepare(decode(text)))

    def put_text(self, defn: MatchDefinition, text: str, features: dict) -> None:
        """Give get_text's entry for `text` features prepared already (the caller vouches that they are
        defn.prepare(decode(text))); an entry there already, in either tier, stays as it is (most recently used)."""
        key = (defn.domain, "text", text)
        with self._lock:
            if key in self.entries:
                self.entries.move_to_end(key)
                return
            if self.packed:
                digest = self._digest(key)
                if digest in self.packed:
                    self.packed.move_to_end(digest)
                    return
            self._insert(key, features)

    def __len__(self) -> int:
        """How many distinct entries are held (one unpacked into the first tier is in both)."""
        with self._lock:
            both = sum(1 for digest in self._unpacked.values() if digest in self.packed)
            return len(self.entries) + len(self.packed) - both

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()
            self.packed.clear()
            self._unpacked.clear()


prepared_cache = _PreparedCache(
    max(1, getattr(settings, "MDM_MATCH_FEATURE_CACHE_HOT", PREPARED_CACHE_SIZE)),
    max(0, getattr(settings, "MDM_MATCH_FEATURE_CACHE", PREPARED_PACKED_SIZE)),
)


@dataclass
class _GoldenScore:
    golden_id: uuid.UUID
    best: Scored
    worst: Scored
    vetoed: Scored | None
    members: int
    identified: bool = False  # the best member shares a trusted identifier exactly


def golden_scores(defn: MatchDefinition, per_golden: dict[uuid.UUID, list[Scored]]) -> list[_GoldenScore]:
    """Each golden record's score from its source records' (in the order they were read: by pk), best first."""
    scored = []
    identifiers = defn.identifiers
    for golden_id, results in per_golden.items():
        if len(results) == 1:
            best = worst = results[0]
            vetoed = best if best.veto else None
        else:
            vetoed = next((r for r in results if r.veto), None)
            ordered = sorted(results, key=_minus_weight)
            best, worst = ordered[0], ordered[-1]
        scored.append(_GoldenScore(golden_id, best, worst, vetoed, len(results), best.exact_on(identifiers)))
    scored.sort(key=_golden_order)
    return scored


def _minus_weight(scored: Scored) -> float:
    return -scored.weight


def _golden_order(g: _GoldenScore) -> tuple[float, uuid.UUID]:
    # Best first, ties by golden id as text: UUIDs order as their text does (the same 32 lowercase hex digits
    # in the same places), and are compared only on a tie, so no text is made for each one.
    return (-(g.best.weight if g.vetoed is None else float("-inf")), g.golden_id)


def population_cache_key(domain: str) -> str:
    """The shared-cache key of a domain's live record count: per database, since hubs (and test runs) may share
    one Redis."""
    return f"mdm:matching:population:{connection.settings_dict.get('NAME')}:{domain}"


def _population(domain: str) -> int:
    """The number of live applied source records of the domain, as this process's transaction sees it: the
    denominator of term frequencies.

    In a small hub (below _POPULATION_CACHE_FROM) it is counted every time. In a big one an exact count costs
    ~0.5 s (at 1,000,000 records), so the committed count is kept in the shared cache (counted again every
    _POPULATION_SECONDS), and the writers that make a source record live or not live tell it (`population_add`):
    this transaction's own changes count at once for this process (as its uncommitted rows count in its own
    COUNT), and move the shared count when the transaction commits; a rollback, of the transaction or of the
    savepoint they were made in, discards them with the rows. What it may still miss, and for how long:
    - another process's committed writes for up to _POPULATION_MEMO_SECONDS (the memo in front of the shared
      count), i.e. at most what other processes commit in that time;
    - a change made without these services (a raw delete), until the shared count is counted again.
    Inside `population_private` (an evaluation's rolled-back run) the count is the run's own and nothing shared
    is read or moved."""
    from canonical.models import SourceRecord, SourceStatus

    private = _private_population.get()
    mine = private is not None and domain in private  # a private count (population_private)
    if mine and private[domain] is not None:
        return private[domain]
    cache_key = population_cache_key(domain)
    committed: int | None = None
    memo = _population_memo.get(cache_key)
    if not mine and memo is not None and time.monotonic() - memo[0] < _POPULATION_MEMO_SECONDS:
        committed = memo[1]
    elif not mine:
        cached = cache.get(cache_key)
        if cached is not None and cached >= _POPULATION_CACHE_FROM:  # (a smaller one is not ours: counted again)
            _population_memo[cache_key] = (time.monotonic(), cached)
            committed = cached
    if committed is not None:
        return committed + _uncommitted(cache_key)
    count = SourceRecord.objects.filter(domain=domain, status=SourceStatus.APPLIED, deleted=False).count()
    if mine:
        private[domain] = count
    elif count >= _POPULATION_CACHE_FROM:
        committed = count - _uncommitted(cache_key)
        cache.set(cache_key, committed, _POPULATION_SECONDS)
        _population_memo[cache_key] = (time.monotonic(), committed)
    else:
        _population_memo.pop(cache_key, None)
    return count


class _PopulationDelta:
    """A change of the population made in a transaction, kept as an on_commit callback: Django runs it when the
    transaction commits and drops it when the transaction, or the savepoint it was made in, rolls back — exactly
    what happens to the rows it counts. Until then it counts for this process only (`_uncommitted`)."""

    __slots__ = ("key", "delta")

    def __init__(self, key: str, delta: int):
        self.key, self.delta = key, delta

    def __call__(self) -> None:
        _shared_add(self.key, self.delta)


def _uncommitted(cache_key: str) -> int:
    """This process's population changes not committed yet (its open transaction's, savepoints rolled back
    excluded)."""
    conn = transaction.get_connection()
    if not conn.in_atomic_block:
        return 0
    return sum(f.delta for _, f, _ in conn.run_on_commit if type(f) is _PopulationDelta and f.key == cache_key)


def _shared_add(cache_key: str, delta: int) -> None:
    """Move the committed count: this process's memo and the shared cache (INCRBY: atomic, expiry kept)."""
    memo = _population_memo.get(cache_key)
    if memo is not None:
        if memo[1] + delta >= _POPULATION_CACHE_FROM:
            _population_memo[cache_key] = (memo[0], memo[1] + delta)
        else:  # small again: counted exactly from now on
            del _population_memo[cache_key]
    try:
        count = cache.incr(cache_key, delta)
    except ValueError:  # not cached (a small hub, or expired): the next read counts
        return
    if count < _POPULATION_CACHE_FROM or count == delta:
        # Small again; or the key expired between the backend's existence check and INCRBY, which then made a
        # key of its own holding just `delta` and never expiring (no count we cache is ever 0): drop it.
        cache.delete(cache_key)


def population_add(domain: str, delta: int) -> None:
    """`delta` source records of the domain became live and applied (or, negative, stopped being). Called by every
    writer of a source record's status or `deleted` (canonical/services/ingest.py, bulk.py) right after the write,
    before anything matches again, so that the next read gives the count the database now holds for this
    transaction, as a small hub's exact count would. Nothing to do while this process has not seen a cached count
    (a small hub is counted exactly; a big one is read, and remembered, before the first match)."""
    if not delta:
        return
    private = _private_population.get()
    if private is not None and domain in private:
        if private[domain] is not None:
            private[domain] += delta
        return
    cache_key = population_cache_key(domain)
    if cache_key in _population_memo:
        transaction.on_commit(_PopulationDelta(cache_key, delta))  # at once, outside a transaction


def population_forget(domain: str) -> None:
    """Drop the cached population (this process's memo and the shared count): the next read counts exactly."""
    cache_key = population_cache_key(domain)
    _population_memo.pop(cache_key, None)
    cache.delete(cache_key)


_private_population: contextvars.ContextVar[dict[str, int | None] | None] = contextvars.ContextVar(
    "mdm_private_population", default=None
)
# the run's own memo of common keys, by domain (known_common_keys), beside its population
_private_common_keys: contextvars.ContextVar[dict[str, set[tuple[str, str]]] | None] = contextvars.ContextVar(
    "mdm_private_common_keys", default=None
)


@contextlib.contextmanager
def population_private(domain: str):
    """Within it, the domain's population is this context's own: counted exactly once, then moved by its
    writers; the shared count is neither read nor moved. For an evaluation, which clears the domain and ingests
    its file in a transaction it rolls back: the hub's processes must not count its records, nor it theirs. Its
    memo of keys too common to block on is its own too (`known_common_keys`). Not to be nested for one domain
    (an inner run would count and remember apart from the outer one)."""
    private = dict(_private_population.get() or {})
    private[domain] = None
    common = dict(_private_common_keys.get() or {})
    common[domain] = set()
    token = _private_population.set(private)
    common_token = _private_common_keys.set(common)
    try:
        yield
    finally:
        _private_common_keys.reset(common_token)
        _private_population.reset(token)


def _key_rows(domain: str, keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[tuple[str, int]]]:
    """(key_type, key_value) → [(golden_id, source_record_id)], at most KEY_CAP + 1 rows per key, from the index."""
    if not keys:
        return {}
    from canonical.models import MatchKey

    table = connection.ops.quote_name(MatchKey._meta.db_table)
    parts, params = [], []
    for i, (key_type, key_value) in enumerate(keys):
        parts.append(
            f"SELECT * FROM (SELECT {i} AS k, golden_id, source_record_id FROM {table} "
            f"WHERE domain = %s AND key_type = %s AND key_value = %s LIMIT {KEY_CAP + 1}) AS q{i}"
        )
        params += [domain, key_type, key_value]
    out: dict[tuple[str, str], list[tuple[str, int]]] = {key: [] for key in keys}
    with connection.cursor() as cur:
        cur.execute(" UNION ALL ".join(parts), params)
        for k, golden_id, source_record_id in cur.fetchall():
            out[keys[k]].append((str(golden_id), source_record_id))
    return out


# A golden record's standing among the candidates, as one integer: _TYPE_WEIGHT for each key type it shares, plus
# _RARITY_SCALE // (the key's rows) for each key it shares (an integer sum: exact, so it does not depend on the
# order the keys are added in, as a float sum would in its last bit). Below 2**50 for any number of keys a record
# has, so a key type more always outranks rarer keys.
_RARITY_SCALE = 1 << 40
_TYPE_WEIGHT = 1 << 50
# The order of a temporary (negative) source record id of the bulk path's overlay: after every written one (its
# real id will be greater), -1 first, then -2, ... (written in that order).
_AFTER_WRITTEN = 1 << 62
_NOT_LISTED = _AFTER_WRITTEN * 2  # after every source record id, written or temporary

# (key, how many of its rows count, its rows by golden id: one dict, or more whose golden ids may overlap)
UsableKey = tuple[tuple[str, str], int, list[dict[str, list[int]]]]


def rank_candidates(usable: list[UsableKey], own: str | None = None) -> list[str]:
    """The golden ids worth scoring, at most MAX_CANDIDATES (in no particular order), from the rows of the record's
    usable blocking keys (in the record's key order; at most KEY_CAP rows each).

    Ranked by what the rows say, not by the golden id (a random uuid4: two runs of the same input kept a different
    MAX_CANDIDATES of a tie, and rarely decided differently): the most key types shared; then the rarest keys
    shared (the sum of 1/rows over them: a key few records have says more than one many have). fuzzy's
    candidates() and the bulk path (batch.py) both rank with this, so they keep the same golden records.

    The golden records tied on that score at the cut, when they do not all fit in the places left:
    - if some golden records rank above the tie, the tie is left out whole. Its members share less with the record
      than those kept, and their scores do not tell them apart (in practice dozens sharing one middling key, a
      name's first letters or a common name word), so which of them to score would be a pick by listing order.
      `own` (the golden record of a record matched again, through its other source records' rows) is ranked like
      any other but does not count as ranking above a tie: a record's own golden record says nothing about it.
    - otherwise (nothing ranks above the tie) it is broken by which keys (the record's own key values, compared in
      the record's key order), the most rows in them (a golden record with more source records behind those keys),
      the golden record first listed (its earliest source record: the input order, the same in every run of the
      same input), and the golden id only last; worked out only for the tie.
    The effect of leaving a tie out is measured in docs/benchmarks.md (end-to-end deduplication, 3c0b68e)."""
    score: dict[str, int] = {}
    get = score.get
    by_type: dict[str, list[UsableKey]] = {}
    for entry in usable:
        by_type.setdefault(entry[0][0], []).append(entry)
    for entries in by_type.values():
        if len(entries) == 1:  # most key types have one key: no golden record can share the type twice
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
    if kept and (own is None or len(kept) > 1 or kept[0] != own):  # a tie below others: left out (see above)
        return kept
    # The tie at the cut, nothing (or only `own`) above it: which keys, how many rows, the first listed, the id.
    # Every row of the keys is looked at (at most KEY_CAP a key, as scoring did above): a plain loop over them cost
    # less than looking the tied golden ids up in the larger dicts through a generator. Then the whole sort keys are
    # sorted as tuples, no key function (the golden id last: no two are equal).
    tie = {golden_id: [[], 0, _NOT_LISTED] for golden_id in tied}
    for key, _, groups_list in usable:
        for groups in groups_list:
            for golden_id, sids in groups.items():
                entry = tie.get(golden_id)
                if entry is None:
                    continue
                if not entry[0] or entry[0][-1] != key:  # not counted yet through another dict of this key
                    entry[0].append(key)
                entry[1] += len(sids)
                for sid in sids:
                    at = sid if sid >= 0 else _AFTER_WRITTEN - sid
                    if at < entry[2]:
                        entry[2] = at
    order = [(keys, -rows, first, golden_id) for golden_id, (keys, rows, first) in tie.items()]
    order.sort()
    return kept + [entry[3] for entry in order[:wanted]]


def ranked_rows(ranked: list[str], usable: list[UsableKey]):
    """The source record ids of the ranked golden ids' rows in these keys' rows by golden id (in no order)."""
    ranked_set = set(ranked)
    for _, _, groups_list in usable:
        for groups in groups_list:
            if len(groups) <= len(ranked):
                for golden_id, sids in groups.items():
                    if golden_id in ranked_set:
                        yield sids
            else:
                for golden_id in ranked:
                    sids = groups.get(golden_id)
                    if sids is not None:
                        yield sids


def live_sources_of(
    domain: str, source_record_ids: list[int], exclude_source_record: int | None = None
) -> list[tuple[uuid.UUID, Any]]:
    """(golden_id, values) of the live source records of the golden records these source records belong to now,
    by pk: one query. On PostgreSQL written out (building it with the ORM cost more than running it); the
    stored values are converted by the JSONField, as the ORM converts them."""
    from canonical.models import SourceRecord, SourceStatus

    if connection.vendor != "postgresql":
        current = SourceRecord.objects.filter(pk__in=source_record_ids).values("golden_id")
        return list(
            SourceRecord.objects.filter(
                domain=domain, golden_id__in=current, status=SourceStatus.APPLIED, deleted=False
            )
            .exclude(pk=exclude_source_record)
            .order_by("pk")
            .values_list("golden_id", "values")
        )
    table = connection.ops.quote_name(SourceRecord._meta.db_table)
    values_field = SourceRecord._meta.get_field("values")
    # The golden ids first, then each one's live sources by the (domain, golden_id) index: a LATERAL join keeps
    # that plan whatever the statistics say (with `golden_id IN (subquery)` and a table not analysed since it
    # grew, the planner scanned every live source record, 140 ms a match at 36,000 records).
    exclude = " AND id <> %s" if exclude_source_record is not None else ""
    sql = (
        f"SELECT s.golden_id, s.stored FROM (SELECT DISTINCT golden_id FROM {table} WHERE id = ANY(%s) "
        f"AND golden_id IS NOT NULL) AS g CROSS JOIN LATERAL "
        f'(SELECT id, golden_id, "values" AS stored FROM {table} WHERE domain = %s AND golden_id = g.golden_id '
        f"AND status = %s AND NOT deleted{exclude}) AS s ORDER BY s.id"
    )
    params: list[Any] = [list(source_record_ids), domain, SourceStatus.APPLIED.value]
    if exclude_source_record is not None:
        params.append(exclude_source_record)
    with connection.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    return [(golden_id, values_field.from_db_value(stored, None, connection)) for golden_id, stored in rows]


class FuzzyMatcher:
    """The default matcher: see the module docstring."""

    def keys(self, *, domain: str, values: dict[str, Any]) -> list[tuple[str, str]]:
        defn = get_definition(domain)
        return defn.keys(defn.prepare(values))

    # --- scoring ------------------------------------------------------------------------------------------

    def _tf(self, domain: str, counts: dict[tuple[str, str], int]):
        """Term frequency of a key value among live source records, or None while the hub is too small to say."""
        from .scoring import MIN_TF_POPULATION

        population: list[int] = []

        def tf(key_type: str, value: str) -> float | None:
            if not population:
                population.append(_population(domain))  # read once, and only if some exact level asks
            if population[0] < MIN_TF_POPULATION:
                return None
            count = counts.get((key_type, value))
            if count is None:
                from canonical.models import MatchKey

                count = MatchKey.objects.filter(domain=domain, key_type=key_type, key_value=value[:255])[
                    : KEY_CAP + 1
                ].count()
                counts[(key_type, value)] = count
            return max(count, 1) / population[0]

        return tf

    @staticmethod
    def _scorer(defn: MatchDefinition) -> Scorer:
        return scorer_for(defn.comparisons, defn.hard_rules, defn.prior, defn.noun)

    def _score(self, defn: MatchDefinition, a: dict, b: dict, tf) -> Scored:
        return self._scorer(defn).score(a, b, tf)

    def candidates(
        self, *, domain: str, values: dict[str, Any], exclude_source_record: int | None = None, exclude_golden=None
    ) -> tuple[MatchDefinition, list[_GoldenScore]]:
        """Score the golden records that share blocking keys with `values`, best first."""

        defn = get_definition(domain)
        features = defn.prepare(values)
        keys = defn.keys(features)
        common = known_common_keys(domain)
        if common is None:
            common = set()
        rows = _key_rows(domain, [key for key in keys if key not in common])
        counts = {key: len(found) for key, found in rows.items()}
        for key in keys:
            if key in common:  # known to be too common to block on: not fetched again (KEY_CAP + 1 rows)
                counts[key] = KEY_CAP + 1
                rows[key] = []
            elif counts[key] > KEY_CAP:
                common.add(key)
        exclude = str(exclude_golden) if exclude_golden is not None else None
        own: str | None = None
        usable: list[UsableKey] = []
        for key, found in rows.items():
            if len(found) > KEY_CAP:
                continue  # too common to block on
            groups: dict[str, list[int]] = {}
            count = 0
            for golden_id, source_record_id in found:
                if source_record_id == exclude_source_record:
                    own = golden_id  # the record's own golden record (as its MatchKey rows say)
                    continue
                count += 1
                if golden_id != exclude:
                    sids = groups.get(golden_id)
                    if sids is None:
                        groups[golden_id] = [source_record_id]
                    else:
                        sids.append(source_record_id)
            if groups:
                usable.append((key, count, [groups]))
        ranked = rank_candidates(usable, own)
        if not ranked:
            return defn, []
        # All live source records of the golden records those keys belong to now (one query; a merge that
        # moved source records is followed through their golden_id).
        found_ids = list({sid for sids in ranked_rows(ranked, usable) for sid in sids})
        sources = live_sources_of(domain, found_ids, exclude_source_record)
        tf = self._tf(domain, counts)
        score = self._scorer(defn).score
        per_golden: dict[uuid.UUID, list[Scored]] = defaultdict(list)
        for golden_id, stored in sources:
            per_golden[golden_id].append(score(features, prepared_cache.get(defn, stored), tf))
        if exclude_golden is not None:
            per_golden = {g: results for g, results in per_golden.items() if str(g) != str(exclude_golden)}
        return defn, golden_scores(defn, per_golden)

    @staticmethod
    def _candidate(g: _GoldenScore) -> Candidate:
        scored = g.vetoed or g.best
        return ScoredCandidate(g.golden_id, round(scored.probability, 6), scored=scored)

    # --- the interface ------------------------------------------------------------------------------------

    def match(self, *, domain: str, values: dict[str, Any], exclude_source_record: int | None = None) -> MatchOutcome:
        defn, scored = self.candidates(domain=domain, values=values, exclude_source_record=exclude_source_record)
        outcome = self.decide(defn, scored)
        from .signals import match_decided

        match_decided.send(sender=type(self), domain=domain, values=values, outcome=outcome)
        return outcome

    def search(self, *, domain: str, values: dict[str, Any], exclude_golden=None) -> MatchOutcome:
        """What match() would decide, without telling anyone (search before create, candidates of a record)."""
        defn, scored = self.candidates(domain=domain, values=values, exclude_golden=exclude_golden)
        return self.decide(defn, scored)

    def decide(self, defn: MatchDefinition, scored: list[_GoldenScore]) -> MatchOutcome:
        live = [g for g in scored if g.vetoed is None]
        candidates = [self._candidate(g) for g in scored]
        # Above the link threshold, or sharing a trusted identifier with nothing that makes it unlikely.
        linkable = [
            g
            for g in live
            if g.best.probability >= defn.link_probability
            or (g.identified and g.best.probability >= defn.review_probability)
        ]
        reviewable = [g for g in live if g.best.probability >= defn.review_probability]
        if len(linkable) == 1:
            chosen = linkable[0]
            if chosen.worst.probability < defn.doubt_probability:
                return MatchOutcome(
                    decision="review",
                    golden_id=chosen.golden_id,
                    candidates=candidates,
                    reason=f"doubtful cluster: matches one member of {chosen.golden_id} "
                    f"(p={chosen.best.probability:.3f}) but another looks like a different {defn.noun} "
                    f"(p={chosen.worst.probability:.3f})",
                )
            return MatchOutcome(
                decision="link", golden_id=chosen.golden_id, candidates=candidates, reason=chosen.best.reason
            )
        if len(linkable) > 1:
            ids = ", ".join(str(g.golden_id) for g in linkable[:3])
            return MatchOutcome(
                decision="review",
                golden_id=linkable[0].golden_id,
                candidates=candidates,
                reason=f"matches {len(linkable)} golden records that were not merged with each other ({ids}): "
                "a steward decides",
            )
        if reviewable:
            best = reviewable[0]
            return MatchOutcome(
                decision="review",
                golden_id=best.golden_id,
                candidates=candidates,
                reason=f"review zone: {best.best.reason}",
            )
        best_p = max((g.best.probability for g in live), default=0.0)
        reason = (
            f"no candidate above the review threshold (best p={best_p:.3f})"
            if scored
            else "no golden record shares a blocking key"
        )
        return MatchOutcome(decision="new", candidates=candidates, reason=reason)

    def explain(self, *, domain: str, values_a: dict[str, Any], values_b: dict[str, Any]) -> Candidate:
        defn = get_definition(domain)
        a, b = defn.prepare(values_a), defn.prepare(values_b)
        tf = self._tf(domain, {})
        scored = self._score(defn, a, b, tf)
        return Candidate(
            golden_id=None, score=round(scored.probability, 6), reason=scored.reason, comparisons=scored.comparisons
        )
