"""Batch-friendly FuzzyMatcher.match for the bulk ingest path (canonical/services/bulk.py).

`BatchMatch.match(values)` decides exactly what `FuzzyMatcher.match` would decide for one record if every
record the batch has accepted so far were already written, but it asks the database in bulk:

- the MatchKey rows of every blocking key of a window of upcoming records in one query (at most KEY_CAP + 1
  rows per key, as fuzzy's `_key_rows`), then the current golden id of the source records found and the live
  source records of those golden records in one query each;
- an in-memory overlay holds the keys, source values and golden records the batch created but has not
  written yet (temporary negative source record ids), so the batch's own earlier records are candidates too.

The scoring and the decision are fuzzy.py's own (`FuzzyMatcher._score`, `FuzzyMatcher.decide`), so the
comparisons, weights, thresholds and term-frequency adjustment stay in one place. `invalidate()` drops what
was read from the database (after anything else wrote to it); `overlay_clear()` after the overlay is written.
"""

from __future__ import annotations

import heapq
import uuid
from collections import defaultdict
from operator import itemgetter
from typing import Any

from django.core.cache import cache
from django.db import connection

from .base import MatchOutcome
from .definitions import get_definition
from .fuzzy import _POPULATION_CACHE_FROM, KEY_CAP, MAX_CANDIDATES, FuzzyMatcher, _key_rows, golden_scores
from .fuzzy import _population as _fuzzy_population
from .scoring import MIN_TF_POPULATION

Key = tuple[str, str]


def key_rows_bulk(domain: str, keys: list[Key]) -> dict[Key, list[tuple[str, int]]]:
    """fuzzy's `_key_rows` for many keys: one LATERAL query on PostgreSQL, UNION ALL chunks elsewhere."""
    out: dict[Key, list[tuple[str, int]]] = {key: [] for key in keys}
    if not keys:
        return out
    if connection.vendor != "postgresql":
        for start in range(0, len(keys), 200):  # SQLite allows 500 terms in a compound SELECT
            out.update(_key_rows(domain, keys[start : start + 200]))
        return out
    from canonical.models import MatchKey

    table = connection.ops.quote_name(MatchKey._meta.db_table)
    sql = (
        "SELECT v.k, m.golden_id, m.source_record_id "
        "FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS v(kt, kv, k) "
        f"CROSS JOIN LATERAL (SELECT golden_id, source_record_id FROM {table} "
        f"WHERE domain = %s AND key_type = v.kt AND key_value = v.kv LIMIT {KEY_CAP + 1}) AS m"
    )
    with connection.cursor() as cur:
        cur.execute(sql, [[k[0] for k in keys], [k[1] for k in keys], domain])
        for k, golden_id, source_record_id in cur.fetchall():
            out[keys[k - 1]].append((str(golden_id), source_record_id))
    return out


def _frozen(value: Any) -> Any:
    if value is None or type(value) is str:
        return value
    if type(value) is dict:
        return ("dict", tuple((_frozen(k), _frozen(v)) for k, v in value.items()))  # in order: stricter
    if type(value) in (list, tuple):
        return (type(value).__name__, tuple(_frozen(v) for v in value))
    return (type(value).__qualname__, repr(value))  # equal only if the same type and written the same


def content_key(values: dict) -> tuple:
    """A hashable key two value dicts share only if normalising them must give the same features: the same keys
    in the same order, values of the same types written the same (1, 1.0, True and Decimal("1.0") stay apart)."""
    return _frozen(values)


def _population_cache_key(domain: str) -> str:
    """The shared-cache key fuzzy keeps the live record count under (per database in newer versions)."""
    from . import fuzzy

    key_of = getattr(fuzzy, "population_cache_key", None)
    return key_of(domain) if key_of is not None else f"mdm:matching:population:{domain}"


class BatchMatch:
    """See the module docstring. One instance per (bulk ingest chunk, domain)."""

    def __init__(self, *, domain: str, matcher: FuzzyMatcher):
        self.domain = domain
        self.matcher = matcher
        self.defn = get_definition(domain)
        self._features: dict[int, dict] = {}  # prepared features of candidate source records, by id
        self._probes: dict[tuple, tuple[dict, list[Key]]] = {}  # the last prefetched window's, by content
        self._last_probe: tuple[tuple, dict] | None = None  # the record match() saw last: content, features
        self.invalidate()
        self.overlay_clear()

    # --- state ------------------------------------------------------------------------------------------

    def invalidate(self) -> None:
        """Forget what was read from the database (something else has written to it since)."""
        self._db_rows: dict[Key, list[tuple[str, int]]] = {}
        self._sr_keys: dict[int, set[Key]] = defaultdict(set)  # source record id -> cached keys listing it
        self._db_sr_golden: dict[int, uuid.UUID | None] = {}
        self._db_sources: dict[uuid.UUID, list[tuple[int, dict]]] = {}
        self._src_of: dict[int, uuid.UUID] = {}  # source record id -> the golden record whose cached sources hold it
        self._db_counts: dict[Key, int] = {}
        self._db_population: int | None = None
        self._features = {k: v for k, v in self._features.items() if k < 0}

    def overlay_clear(self) -> None:
        """The overlay was written (or dropped): forget it."""
        self._ov_rows: dict[Key, list[tuple[str, int]]] = defaultdict(list)
        self._ov_sr_golden: dict[int, uuid.UUID] = {}
        self._ov_sources: dict[uuid.UUID, list[tuple[int, dict]]] = defaultdict(list)
        self._ov_applied = 0
        self._features = {k: v for k, v in self._features.items() if k >= 0}

    def overlay_add(self, *, temp_id: int, golden_id: uuid.UUID, values: dict, keys: list[Key]) -> None:
        """A record the batch accepted (new golden record, live and applied), not written yet."""
        for key in keys:
            self._ov_rows[key].append((str(golden_id), temp_id))
        self._ov_sr_golden[temp_id] = golden_id
        self._ov_sources[golden_id].append((temp_id, values))
        self._ov_applied += 1
        if self._last_probe is not None and self._last_probe[0] == content_key(values):
            self._features.setdefault(temp_id, self._last_probe[1])  # prepared by match() already

    def overlay_written(self, real_ids: dict[int, int]) -> None:
        """The overlay was written with these source record ids (temporary id -> real): it is database now."""
        for key, found in self._ov_rows.items():
            cached = self._db_rows.get(key)
            if cached is not None and len(cached) <= KEY_CAP:
                cached += [(golden, real_ids[sid]) for golden, sid in found]
                for _, sid in found:
                    self._sr_keys[real_ids[sid]].add(key)
            self._db_counts.pop(key, None)
        for temp, golden in self._ov_sr_golden.items():
            self._db_sr_golden[real_ids[temp]] = golden
        for golden, sources in self._ov_sources.items():
            self._db_sources[golden] = [(real_ids[sid], stored) for sid, stored in sources]
            for sid, _ in sources:
                self._src_of[real_ids[sid]] = golden
        for temp, real in real_ids.items():
            if temp in self._features:
                self._features[real] = self._features.pop(temp)
        if self._db_population is not None and self._db_population < _POPULATION_CACHE_FROM:
            self._db_population += self._ov_applied
        else:
            self._db_population = None
        self.overlay_clear()

    def keys(self, values: dict) -> list[Key]:
        return list(self._probe(values, content_key(values))[1])

    def _probe(self, values: dict, content: tuple) -> tuple[dict, list[Key]]:
        """An incoming record's features and blocking keys, prepared once for prefetch() and match() (the last
        prefetched window's, by content: the caller may pass equal copies)."""
        found = self._probes.get(content)
        if found is None:
            features = self.defn.prepare(values)
            found = self._probes[content] = (features, self.defn.keys(features))
        return found

    # --- database reads in bulk -------------------------------------------------------------------------

    def prefetch(self, values_list: list[dict]) -> None:
        """Read the candidates of these records (their blocking keys' rows, then the golden records' sources)."""
        self._probes = {}
        per_record = [self._probe(values, content_key(values))[1] for values in values_list]
        wanted = list(dict.fromkeys(key for keys in per_record for key in keys if key not in self._db_rows))
        if wanted:
            self._rows_add(key_rows_bulk(self.domain, wanted))
        # The sources of each record's best-ranked golden records as the database alone ranks them; match()
        # reads any others it needs once the overlay is counted in (rare: a key the overlay makes too common).
        sr_ids: set[int] = set()
        for keys in per_record:
            shared: dict[str, set[str]] = defaultdict(set)
            via: dict[str, set[int]] = defaultdict(set)
            for key in keys:
                found = self._db_rows[key]
                if len(found) > KEY_CAP:
                    continue
                for golden_id, source_record_id in found:
                    shared[golden_id].add(key[0])
                    via[golden_id].add(source_record_id)
            for g in sorted(shared, key=lambda g: (-len(shared[g]), g))[:MAX_CANDIDATES]:
                sr_ids |= via[g]
        self._load_sources(sr_ids)

    def _load_sources(self, sr_ids: set[int]) -> None:
        from canonical.models import SourceRecord, SourceStatus

        sr_ids = {sid for sid in sr_ids if sid not in self._db_sr_golden}
        if not sr_ids:
            return
        found = dict(SourceRecord.objects.filter(pk__in=sr_ids).values_list("pk", "golden_id"))
        for sid in sr_ids:
            self._db_sr_golden[sid] = found.get(sid)
        goldens = {g for g in found.values() if g is not None and g not in self._db_sources}
        if not goldens:
            return
        for g in goldens:
            self._db_sources[g] = []
        rows = (
            SourceRecord.objects.filter(
                domain=self.domain, golden_id__in=goldens, status=SourceStatus.APPLIED, deleted=False
            )
            .order_by("pk")
            .values_list("pk", "golden_id", "values")
        )
        for pk, golden_id, stored in rows:
            self._db_sources[golden_id].append((pk, stored))
            self._src_of[pk] = golden_id

    def _rows_add(self, rows: dict[Key, list[tuple[str, int]]]) -> None:
        self._db_rows.update(rows)
        for key, found in rows.items():
            for _, sid in found:
                self._sr_keys[sid].add(key)

    def refresh(self, *, system: str, source_ids: list[str]) -> None:
        """These source records were just written by something else (a record-by-record fallback that changed
        nothing but them and their golden record's values): patch what was read about them instead of reading
        everything again."""
        from canonical.models import MatchKey, SourceRecord, SourceStatus

        rows = list(
            SourceRecord.objects.filter(system_id=system, domain=self.domain, source_id__in=source_ids).values_list(
                "pk", "golden_id", "status", "deleted", "values"
            )
        )
        sr_ids = {row[0] for row in rows}
        if not sr_ids:
            return
        new_keys: dict[int, list[tuple[Key, str]]] = defaultdict(list)
        for sid, key_type, key_value, golden_id in MatchKey.objects.filter(source_record_id__in=sr_ids).values_list(
            "source_record_id", "key_type", "key_value", "golden_id"
        ):
            new_keys[sid].append(((key_type, key_value), str(golden_id)))
        for sid in sr_ids:
            for key in self._sr_keys.pop(sid, set()):  # its old rows
                found = self._db_rows.get(key)
                if found is None:
                    continue
                if len(found) > KEY_CAP:
                    del self._db_rows[key]  # truncated: how many are left is unknown, read it again if needed
                else:
                    self._db_rows[key] = [row for row in found if row[1] != sid]
                self._db_counts.pop(key, None)
            for key, golden in new_keys.get(sid, ()):  # its new rows
                self._db_counts.pop(key, None)
                found = self._db_rows.get(key)
                if found is not None and len(found) <= KEY_CAP:
                    found.append((golden, sid))
                    self._sr_keys[sid].add(key)
            old = self._src_of.pop(sid, None)
            if old is not None:
                self._db_sources[old] = [row for row in self._db_sources[old] if row[0] != sid]
            self._features.pop(sid, None)
        for sid, golden_id, status, deleted, stored in rows:
            if sid in self._db_sr_golden:
                self._db_sr_golden[sid] = golden_id
            if golden_id in self._db_sources and status == SourceStatus.APPLIED and not deleted:
                self._db_sources[golden_id] = sorted([*self._db_sources[golden_id], (sid, stored)], key=lambda r: r[0])
                self._src_of[sid] = golden_id
        self._db_population = None

    def _population(self) -> int:
        """fuzzy's `_population` as it would read with the overlay written (an exact count gets the overlay added;
        a cached one is what record-by-record matching reads too)."""
        if self._db_population is None:
            self._db_population = _fuzzy_population(self.domain)
        if self._db_population >= _POPULATION_CACHE_FROM:
            return self._db_population
        count = self._db_population + self._ov_applied
        if count >= _POPULATION_CACHE_FROM:
            cache.set(_population_cache_key(self.domain), count, 300)
        return count

    def _tf(self, counts: dict[Key, int]):
        """fuzzy's `_tf`, counting the overlay's keys as if they were written."""
        population: list[int] = []

        def tf(key_type: str, value: str) -> float | None:
            if not population:
                population.append(self._population())
            if population[0] < MIN_TF_POPULATION:
                return None
            count = counts.get((key_type, value))
            if count is None:
                key = (key_type, value[:255])
                if key not in self._db_counts:
                    from canonical.models import MatchKey

                    self._db_counts[key] = MatchKey.objects.filter(
                        domain=self.domain, key_type=key_type, key_value=value[:255]
                    )[: KEY_CAP + 1].count()
                count = min(self._db_counts[key] + len(self._ov_rows.get(key, ())), KEY_CAP + 1)
                counts[(key_type, value)] = count
            return max(count, 1) / population[0]

        return tf

    def _prepared(self, sid: int, stored: dict) -> dict:
        features = self._features.get(sid)
        if features is None:
            features = self._features[sid] = self.defn.prepare(stored)
        return features

    # --- the decision -----------------------------------------------------------------------------------

    def match(self, *, values: dict[str, Any]) -> tuple[MatchOutcome, list[Key]]:
        """FuzzyMatcher.match(values) for a record that is not in the database yet, and its keys.

        The caller sends `match_decided` when it acts on the outcome itself (fuzzy sends it in match()).
        """
        defn = self.defn
        content = content_key(values)
        features, keys = self._probe(values, content)
        self._last_probe = (content, features)
        db_rows, ov_rows = self._db_rows, self._ov_rows
        missing = [key for key in keys if key not in db_rows]
        if missing:
            self._rows_add(key_rows_bulk(self.domain, missing))
        # the database's rows then the overlay's, at most KEY_CAP + 1 per key (fuzzy's _key_rows)
        counts: dict[Key, int] = {}
        shared: dict[str, set[str]] = {}
        via: dict[str, set[int]] = {}
        for key in keys:
            found = db_rows[key]
            if len(found) > KEY_CAP:
                counts[key] = KEY_CAP + 1
                continue  # too common to block on
            extra = ov_rows.get(key)
            if extra:
                found = found + extra[: KEY_CAP + 1 - len(found)]
                if len(found) > KEY_CAP:
                    counts[key] = KEY_CAP + 1
                    continue
            counts[key] = len(found)
            key_type = key[0]
            for golden_id, source_record_id in found:
                types = shared.get(golden_id)
                if types is None:
                    shared[golden_id] = {key_type}
                    via[golden_id] = {source_record_id}
                else:
                    types.add(key_type)
                    via[golden_id].add(source_record_id)
        if not shared:
            return self.matcher.decide(defn, []), list(keys)
        ranked = heapq.nsmallest(MAX_CANDIDATES, shared, key=lambda g: (-len(shared[g]), g))  # sorted()[:n]
        found_ids = [sid for g in ranked for sid in via[g]]
        self._load_sources({sid for sid in found_ids if sid >= 0})
        current: set[uuid.UUID] = set()
        for sid in found_ids:
            golden = self._ov_sr_golden.get(sid) if sid < 0 else self._db_sr_golden.get(sid)
            if golden is not None:
                current.add(golden)
        # the database orders by pk; the overlay's records get greater pks than every row written before them
        # (-1 first, then -2, ...)
        db_sources: list[tuple[int, uuid.UUID, dict]] = []
        ov_sources: list[tuple[int, uuid.UUID, dict]] = []
        for golden in current:
            for sid, stored in self._db_sources.get(golden, ()):
                (db_sources if sid >= 0 else ov_sources).append((sid, golden, stored))
            for sid, stored in self._ov_sources.get(golden, ()):
                (db_sources if sid >= 0 else ov_sources).append((sid, golden, stored))
        db_sources.sort(key=itemgetter(0))
        ov_sources.sort(key=itemgetter(0), reverse=True)
        tf = self._tf(counts)
        score = self.matcher._scorer(defn).score
        prepared = self._prepared
        per_golden: dict[uuid.UUID, list] = {}
        for sources in (db_sources, ov_sources):
            for sid, golden, stored in sources:
                scored = score(features, prepared(sid, stored), tf)
                results = per_golden.get(golden)
                if results is None:
                    per_golden[golden] = [scored]
                else:
                    results.append(scored)
        return self.matcher.decide(defn, golden_scores(defn, per_golden)), list(keys)
