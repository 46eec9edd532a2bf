"""Batch-friendly FuzzyMatcher.match for the bulk ingest path (canonical/services/bulk.py).

`BatchMatch.match(values)` decides exactly what `FuzzyMatcher.match` would decide for one record if every
record the batch has accepted so far were already written, but it asks the database in bulk:

- the MatchKey rows of every blocking key of a window of upcoming records in one query (a key with more than
  KEY_CAP rows, too common to block on, as a count only), then the current golden id of the source records
  found and the live source records of those golden records in one query each;
- an in-memory overlay holds the keys, source values and golden records the batch created but has not
  written yet (temporary negative source record ids), so the batch's own earlier records are candidates too.

The scoring and the decision are fuzzy.py's own (`FuzzyMatcher._score`, `FuzzyMatcher.decide`), so the
comparisons, weights, thresholds and term-frequency adjustment stay in one place. `invalidate()` drops what
was read from the database (after anything else wrote to it); `overlay_clear()` after the overlay is written.

Candidates' stored values are read as JSON text: their prepared features are memoised by that text in fuzzy's
`prepared_cache` (shared by every instance, so the next chunk does not prepare them again; keyed by content, so
a source record whose values changed is simply a new entry).
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from django.db import connection

from canonical.sqlparams import id_array, text_array

from .base import MatchOutcome
from .definitions import get_definition
from .fuzzy import (
    KEY_CAP,
    FuzzyMatcher,
    UsableKey,
    _key_rows,
    golden_scores,
    prepared_cache,
    rank_candidates,
    ranked_rows,
)
from .fuzzy import _population as _fuzzy_population
from .fuzzy import known_common_keys as _known_common
from .scoring import MIN_TF_POPULATION

Key = tuple[str, str]


# How far a common key's MatchKey rows are counted: a lower bound kept above KEY_CAP by this much survives that
# many source records rewritten by refresh() (each may have dropped one of its rows) before it is read again.
COMMON_COUNT_CAP = KEY_CAP + 101


def key_rows_bulk(domain: str, keys: list[Key]) -> tuple[dict[Key, list[tuple[str, int]]], dict[Key, int]]:
    """fuzzy's `_key_rows` for many keys, without the rows of the common ones: (the rows of each key with at most
    KEY_CAP of them, golden ids as text; for each key with more, how many, counted up to COMMON_COUNT_CAP).
    One query on PostgreSQL (a row per key, its rows aggregated only when they are few); elsewhere fuzzy's
    `_key_rows` in chunks, a common key's count then being KEY_CAP + 1."""
    rows: dict[Key, list[tuple[str, int]]] = {}
    common: dict[Key, int] = {}
    if not keys:
        return rows, common
    if connection.vendor != "postgresql":
        for start in range(0, len(keys), 200):  # SQLite allows 500 terms in a compound SELECT
            for key, found in _key_rows(domain, keys[start : start + 200]).items():
                if len(found) > KEY_CAP:
                    common[key] = len(found)
                else:
                    rows[key] = found
        return rows, common
    from canonical.models import MatchKey

    table = connection.ops.quote_name(MatchKey._meta.db_table)
    # The keys go as two JSON arrays (canonical.sqlparams: psycopg dumps a text[] element by element, ~14 times
    # the client CPU). A key's golden ids and source record ids each aggregated as one space-separated text (in
    # the same row order), split here: about half the client's CPU of reading them as two arrays, which the
    # driver parses element by element (measured on the keys of a 20,000-record bulk dedup: 900,000 rows).
    sql = (
        "SELECT v.k, m.n, m.g, m.s "
        "FROM ROWS FROM (json_array_elements_text(%s::json), json_array_elements_text(%s::json)) "
        "WITH ORDINALITY AS v(kt, kv, k) "
        f"CROSS JOIN LATERAL (SELECT count(*) AS n, "
        f"CASE WHEN count(*) <= {KEY_CAP} THEN string_agg(golden_id::text, ' ') END AS g, "
        f"CASE WHEN count(*) <= {KEY_CAP} THEN string_agg(source_record_id::text, ' ') END AS s "
        f"FROM (SELECT golden_id, source_record_id FROM {table} "
        f"WHERE domain = %s AND key_type = v.kt AND key_value = v.kv LIMIT {COMMON_COUNT_CAP}) AS q) AS m"
    )
    with connection.cursor() as cur:
        cur.execute(sql, [text_array([k[0] for k in keys]), text_array([k[1] for k in keys]), domain])
        for k, n, goldens, sids in cur.fetchall():
            if n > KEY_CAP:
                common[keys[k - 1]] = n
            else:
                rows[keys[k - 1]] = list(zip(goldens.split(" "), map(int, sids.split(" ")), strict=True)) if n else []
    return rows, common


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


def _decode_values(text: str) -> dict:
    """Stored values read as JSON text, decoded as the JSONField decodes them."""
    from canonical.models import SourceRecord

    return SourceRecord._meta.get_field("values").from_db_value(text, None, connection)


def _same_json(a: Any, b: Any) -> bool:
    """a == b with the same types throughout, a dict's key order aside (jsonb keeps its own order)."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return a.keys() == b.keys() and all(_same_json(v, b[k]) for k, v in a.items())
    if type(a) is list:
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    return a == b


_JSON_SCALAR = json.JSONEncoder(ensure_ascii=False).encode


def _jsonb_key(name: str) -> tuple[int, bytes]:
    data = name.encode()
    return len(data), data


def jsonb_text(value: Any) -> str:
    """The text PostgreSQL gives back for this JSON value stored as jsonb (`"values"::text`), without asking it: an
    object's keys shortest first (in UTF-8 bytes), then by their bytes; ", " and ": " between items; strings
    escaped as json.dumps escapes them without ensure_ascii (PostgreSQL's escape_json escapes the same characters
    the same way). A number may come back written otherwise (jsonb keeps numeric's text: 1e+16 comes back as
    10000000000000000), and then a memo under this text is never found, but not wrong (`prepared_written`).
    tests/canonical/matching/test_jsonb_text.py compares it with the database's text."""
    if type(value) is dict:
        items = sorted(value.items(), key=lambda item: _jsonb_key(item[0]))
        return "{" + ", ".join(f"{_JSON_SCALAR(k)}: {jsonb_text(v)}" for k, v in items) + "}"
    if type(value) is list:
        return "[" + ", ".join(jsonb_text(v) for v in value) + "]"
    return _JSON_SCALAR(value)


@dataclass
class KeysAhead:
    """A window's prefetch begun ahead (BatchMatch.prefetch_ahead): its records' prepared features and keys, and the
    read of the rows of the keys not read then (key_rows_bulk's answer, or a future of it)."""

    probes: dict[tuple, tuple[dict, list[Key]]]
    per_record: list[list[Key]]
    pending: Any


class BatchMatch:
    """See the module docstring. One instance per (bulk ingest chunk, domain). (Keeping one for all the chunks of
    a bulk call measured no faster on 98,599 records, with more memory: docs/benchmarks.md, fourth session of
    28 Nov.)"""

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
        # key -> its rows (all of them), or None for a key with more than KEY_CAP rows (too common to block on),
        # whose count (at least KEY_CAP + 1) is in _db_common
        self._db_rows: dict[Key, list[tuple[str, int]] | None] = {}
        self._db_common: dict[Key, int] = {}
        self._db_groups: dict[Key, dict[str, list[int]]] = {}  # a key's rows by golden id (made when first needed)
        self._sr_keys: dict[int, set[Key]] = defaultdict(set)  # source record id -> cached keys listing it
        self._db_sr_golden: dict[int, uuid.UUID | None] = {}
        # golden id -> its live source records: (id, stored values as JSON text, or as a dict once the overlay's)
        self._db_sources: dict[uuid.UUID, list[tuple[int, str | dict]]] = {}
        self._src_of: dict[int, uuid.UUID] = {}  # source record id -> the golden record whose cached sources hold it
        self._db_counts: dict[Key, int] = {}
        self._db_population: int | None = None
        self._features = {k: v for k, v in self._features.items() if k < 0}

    def overlay_clear(self) -> None:
        """The overlay was written (or dropped): forget it."""
        self._ov_rows: dict[Key, list[tuple[str, int]]] = defaultdict(list)
        self._ov_groups: dict[Key, dict[str, list[int]]] = defaultdict(dict)  # the same by golden id
        self._ov_sr_golden: dict[int, uuid.UUID] = {}
        self._ov_sources: dict[uuid.UUID, list[tuple[int, dict]]] = defaultdict(list)
        self._ov_applied = 0
        self._features = {k: v for k, v in self._features.items() if k >= 0}

    def overlay_add(self, *, temp_id: int, golden_id: uuid.UUID, values: dict, keys: list[Key]) -> None:
        """A record the batch accepted (new golden record, live and applied), not written yet."""
        golden = str(golden_id)
        for key in keys:
            self._ov_rows[key].append((golden, temp_id))
            self._ov_groups[key].setdefault(golden, []).append(temp_id)
        self._ov_sr_golden[temp_id] = golden_id
        self._ov_sources[golden_id].append((temp_id, values))
        self._ov_applied += 1
        if self._last_probe is not None and self._last_probe[0] == content_key(values):
            self._features.setdefault(temp_id, self._last_probe[1])  # prepared by match() already

    def _now_common(self, key: Key, rows: list[tuple[str, int]]) -> None:
        """A key whose rows grew past KEY_CAP is too common to block on: keep its count, drop its rows."""
        self._db_groups.pop(key, None)
        for _, sid in rows:
            listed = self._sr_keys.get(sid)
            if listed is not None:
                listed.discard(key)
        self._db_rows[key] = None
        self._db_common[key] = len(rows)

    def overlay_written(self, real_ids: dict[int, int]) -> None:
        """The overlay was written with these source record ids (temporary id -> real): it is database now."""
        for key, found in self._ov_rows.items():
            cached = self._db_rows.get(key)
            if cached is not None:  # all its rows: add the overlay's
                added = [(golden, real_ids[sid]) for golden, sid in found]
                cached += added
                groups = self._db_groups.get(key)
                if groups is not None:
                    for golden, sid in added:
                        groups.setdefault(golden, []).append(sid)
                if len(cached) > KEY_CAP:
                    self._now_common(key, cached)
                else:
                    for _, sid in found:
                        self._sr_keys[real_ids[sid]].add(key)
            elif key in self._db_common:
                self._db_common[key] += len(found)
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
        if self._db_population is not None:  # the writer moved fuzzy's cached count by as many (population_add)
            self._db_population += self._ov_applied
        self.overlay_clear()

    def prepared_written(self, written: list[tuple[int, dict]]) -> None:
        """These overlay records were (or are being) written: (temporary id, the values stored). The features
        match() prepared for each are memoised in `prepared_cache` under the JSON text the database gives back for
        its stored values (jsonb_text: no query), so a later chunk (a new BatchMatch) that reads it as a candidate
        does not prepare it again.

        Only where that text decodes to exactly the values stored (same types throughout): then the features are
        the ones `prepare(decode(text))` gives, as the overlay already has them stand for the record written
        (prepare reads a reference as its golden id, the overlay's matcher values carry just that id), whatever
        the database holds (an entry for a record never written is never looked up, not wrong)."""
        if connection.vendor != "postgresql":  # the text is PostgreSQL's
            return
        features = self._features
        for temp, values in written:
            if temp in features:
                text = jsonb_text(values)
                if _same_json(_decode_values(text), values):
                    prepared_cache.put_text(self.defn, text, features[temp])

    def keys(self, values: dict) -> list[Key]:
        return list(self._probe(values, content_key(values))[1])

    def _probe(self, values: dict, content: tuple, probes: dict | None = None) -> tuple[dict, list[Key]]:
        """An incoming record's features and blocking keys, prepared once for prefetch() and match() (the last
        prefetched window's, by content: the caller may pass equal copies); into `probes` instead for a window
        prefetched ahead."""
        probes = self._probes if probes is None else probes
        found = probes.get(content)
        if found is None:
            features = self.defn.prepare(values)
            found = probes[content] = (features, self.defn.keys(features))
        return found

    # --- database reads in bulk -------------------------------------------------------------------------

    def prefetch(self, values_list: list[dict]) -> None:
        """Read the candidates of these records (their blocking keys' rows, then the golden records' sources)."""
        self._probes = {}
        db_rows = self._db_rows
        per_record = [self._probe(values, content_key(values))[1] for values in values_list]
        wanted = list(dict.fromkeys(key for keys in per_record for key in keys if key not in db_rows))
        if wanted:
            self._read_keys(wanted)
        self._prefetch_sources(per_record)

    def prefetch_ahead(self, values_list: list[dict], read: Callable[[str, list[Key]], Any]) -> KeysAhead:
        """The first half of prefetch() for a window the caller matches later: its records' features and keys, and
        `read(domain, keys)` asked for the rows of the keys not read yet (key_rows_bulk's answer, or something whose
        `result()` gives it: a reader with a connection of its own reads them while this one matches the window
        before). `prefetch_resume` finishes it, provided the database has not changed meanwhile."""
        probes: dict[tuple, tuple[dict, list[Key]]] = {}
        per_record = [self._probe(values, content_key(values), probes)[1] for values in values_list]
        db_rows = self._db_rows
        known = _known_common(self.domain) or ()
        wanted = list(
            dict.fromkeys(key for keys in per_record for key in keys if key not in db_rows and key not in known)
        )
        return KeysAhead(probes=probes, per_record=per_record, pending=read(self.domain, wanted))

    def prefetch_resume(self, ahead: KeysAhead) -> None:
        """prefetch() of the window `ahead` was begun for (prefetch_ahead), with the key rows it read."""
        self._probes = ahead.probes
        rows, common = ahead.pending.result() if hasattr(ahead.pending, "result") else ahead.pending
        db_rows = self._db_rows
        # keys read meanwhile (match() of the window before) stay as read; the rest as the reader found them,
        # through _read_keys' own bookkeeping (the common keys' memo)
        self._rows_read(
            {key: found for key, found in rows.items() if key not in db_rows},
            {key: count for key, count in common.items() if key not in db_rows},
        )
        missing = list(dict.fromkeys(key for keys in ahead.per_record for key in keys if key not in db_rows))
        if missing:  # common ones the memo knew, or read before and forgotten since (invalidate)
            self._read_keys(missing)
        self._prefetch_sources(ahead.per_record)

    def _prefetch_sources(self, per_record: list[list[Key]]) -> None:
        db_rows = self._db_rows
        # The sources of each record's best-ranked golden records as the database alone ranks them; match()
        # reads any others it needs once the overlay is counted in (rare: a key the overlay makes too common).
        sr_ids: set[int] = set()
        groups_of = self._groups
        for keys in per_record:
            usable: list[UsableKey] = []
            for key in keys:
                found = db_rows[key]
                if not found or len(found) > KEY_CAP:
                    continue
                usable.append((key, len(found), [groups_of(key, found)]))
            for sids in ranked_rows(rank_candidates(usable), usable):
                sr_ids.update(sids)
        self._load_sources(sr_ids)

    def _read_keys(self, keys: list[Key]) -> None:
        """Read these keys' rows (key_rows_bulk), skipping, in a big hub, the keys fuzzy's in-process memo knows to
        be too common to block on, as record-by-record matching does (`FuzzyMatcher.candidates`): the same memo,
        under the same condition, so both paths treat the same keys as common; and the keys found common here go
        into it, as fuzzy's own reads put them there. A key found common stays so until one of its rows goes (a
        record re-keyed or no longer live), and those writers make the memo forget it (`common_keys_forget`); the
        hub's memo also expires after a few minutes, an evaluation run's lasts the run. (A skipped key's count is
        taken as KEY_CAP + 1, the least a common key has: `refresh()` then reads it again after any change.) Each
        of those keys cost up to COMMON_COUNT_CAP index rows to count again in every batch."""
        known = _known_common(self.domain)
        if known:
            skipped = [key for key in keys if key in known]
            if skipped:
                self._rows_add({}, dict.fromkeys(skipped, KEY_CAP + 1))
                keys = [key for key in keys if key not in known]
        if not keys:
            return
        self._rows_read(*key_rows_bulk(self.domain, keys))

    def _rows_read(self, rows: dict[Key, list[tuple[str, int]]], common: dict[Key, int]) -> None:
        """Keys' rows as read from the database (key_rows_bulk's answer): kept, and the keys found common put in
        fuzzy's memo of them, as fuzzy's own reads put them there."""
        self._rows_add(rows, common)
        known = _known_common(self.domain)
        if known is not None:
            known.update(common)

    def _load_sources(self, sr_ids: set[int]) -> None:
        from django.db.models import TextField
        from django.db.models.functions import Cast

        from canonical.models import SourceRecord, SourceStatus

        known = self._db_sr_golden
        sr_ids = [sid for sid in sr_ids if sid not in known]
        if not sr_ids:
            return
        if connection.vendor == "postgresql":
            # written out: the ORM's `pk__in` prepares each of the thousands of ids one by one
            table = connection.ops.quote_name(SourceRecord._meta.db_table)
            with connection.cursor() as cur:
                cur.execute(f"SELECT id, golden_id FROM {table} WHERE id = ANY(%s::bigint[])", [id_array(sr_ids)])
                found = dict(cur.fetchall())
        else:
            found = dict(SourceRecord.objects.filter(pk__in=sr_ids).values_list("pk", "golden_id"))
        for sid in sr_ids:
            known[sid] = found.get(sid)
        goldens = {g for g in found.values() if g is not None and g not in self._db_sources}
        if not goldens:
            return
        for g in goldens:
            self._db_sources[g] = []
        if connection.vendor == "postgresql":
            # each golden record's live sources by the (domain, golden_id) index, whatever the statistics say (a
            # table that grew in this transaction has none): OFFSET 0 keeps the planner from flattening the LATERAL
            # subquery into a hash join over every live source record of the domain (10 ms → 2 ms at 10,000)
            table = connection.ops.quote_name(SourceRecord._meta.db_table)
            sql = (
                f"SELECT s.id, s.golden_id, s.stored FROM unnest(%s::uuid[]) AS g(golden_id) CROSS JOIN LATERAL "
                f'(SELECT id, golden_id, "values"::text AS stored FROM {table} WHERE domain = %s '
                f"AND golden_id = g.golden_id AND status = %s AND NOT deleted OFFSET 0) AS s ORDER BY s.id"
            )
            with connection.cursor() as cur:
                cur.execute(sql, [id_array(goldens), self.domain, SourceStatus.APPLIED.value])
                rows = cur.fetchall()
        else:
            rows = (
                SourceRecord.objects.filter(
                    domain=self.domain, golden_id__in=goldens, status=SourceStatus.APPLIED, deleted=False
                )
                .order_by("pk")
                .values_list("pk", "golden_id", Cast("values", TextField()))
            )
        for pk, golden_id, stored in rows:
            self._db_sources[golden_id].append((pk, stored))
            self._src_of[pk] = golden_id

    def _rows_add(self, rows: dict[Key, list[tuple[str, int]]], common: dict[Key, int]) -> None:
        self._db_rows.update(rows)
        for key in rows:
            self._db_groups.pop(key, None)
        sr_keys = self._sr_keys
        for key, found in rows.items():
            for _, sid in found:
                sr_keys[sid].add(key)
        for key, count in common.items():
            self._db_rows[key] = None
            self._db_common[key] = count

    def refresh(self, *, system: str, source_ids: list[str]) -> None:
        """These source records were just written by something else (a record-by-record fallback that changed
        nothing but them and their golden record's values): patch what was read about them instead of reading
        everything again."""
        from django.db.models import TextField
        from django.db.models.functions import Cast

        from canonical.models import MatchKey, SourceRecord, SourceStatus

        rows = list(
            SourceRecord.objects.filter(system_id=system, domain=self.domain, source_id__in=source_ids).values_list(
                "pk", "golden_id", "status", "deleted", Cast("values", TextField())
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
        # A common key's rows were not read, so whether one of these records had a row there that is gone now is
        # not known: unless a record is still live with the same values as read (so the same keys), count its
        # row as gone. A key that may have KEY_CAP rows or fewer now is read again when needed.
        live: dict[int, str] = {
            sid: stored for sid, _, status, deleted, stored in rows if status == SourceStatus.APPLIED and not deleted
        }
        # live before (among the sources read) and live now: the live count is the same
        same_population = all(sid in live and sid in self._src_of for sid in sr_ids)
        if self._db_common:
            changed = 0
            for sid in sr_ids:
                old = self._src_of.get(sid)
                before = next((s for i, s in self._db_sources.get(old, ()) if i == sid), None) if old else None
                if before is None or type(before) is not str or before != live.get(sid):
                    changed += 1
            if changed:
                for key, count in list(self._db_common.items()):
                    if count - changed > KEY_CAP:
                        self._db_common[key] = count - changed
                    else:
                        del self._db_common[key]
                        del self._db_rows[key]
                        self._db_groups.pop(key, None)
                        self._db_counts.pop(key, None)
        for sid in sr_ids:
            old_keys = self._sr_keys.pop(sid, set())
            kept: set[Key] = set()  # rows it still has as they were (read again unchanged): nothing to patch
            for key, golden in new_keys.get(sid, ()):
                if key in old_keys:
                    found = self._db_rows.get(key)
                    if found is not None and sid in self._groups(key, found).get(golden, ()):
                        kept.add(key)
            if kept:
                self._sr_keys[sid] = kept
            for key in old_keys - kept:  # its old rows
                found = self._db_rows.get(key)
                if found is None:
                    continue
                self._db_rows[key] = [row for row in found if row[1] != sid]
                self._db_groups.pop(key, None)
                self._db_counts.pop(key, None)
            for key, golden in new_keys.get(sid, ()):  # its new rows
                if key in kept:
                    continue
                self._db_counts.pop(key, None)
                found = self._db_rows.get(key)
                if found is not None:
                    found.append((golden, sid))
                    groups = self._db_groups.get(key)
                    if groups is not None:
                        groups.setdefault(golden, []).append(sid)
                    self._sr_keys[sid].add(key)
                    if len(found) > KEY_CAP:
                        self._now_common(key, found)
                # (a common key's count stays: its row may have been there before)
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
        if not same_population:
            self._db_population = None

    def _population(self) -> int:
        """fuzzy's `_population` as it would read with the overlay written: read once, then the overlay's records
        added. Record-by-record ingest writes each of them before the next match, and its writer moves the count
        by one (exactly when it is counted, `population_add` when it is cached), so both read the same number at
        every record. Nothing is cached here: the chunk's writer (bulk `_flush`) moves a cached count once they
        are written, and a count crossing _POPULATION_CACHE_FROM is cached by the next fuzzy read, exact."""
        if self._db_population is None:
            self._db_population = _fuzzy_population(self.domain)
        return self._db_population + self._ov_applied

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

    def _groups(self, key: Key, found: list[tuple[str, int]]) -> dict[str, list[int]]:
        """A key's rows (all of them) by golden id."""
        groups = self._db_groups.get(key)
        if groups is None:
            groups = self._db_groups[key] = {}
            for golden_id, source_record_id in found:
                sids = groups.get(golden_id)
                if sids is None:
                    groups[golden_id] = [source_record_id]
                else:
                    sids.append(source_record_id)
        return groups

    def _prepared(self, sid: int, stored: str | dict) -> dict:
        features = self._features.get(sid)
        if features is None:
            if type(stored) is str:  # as read: JSON text
                features = prepared_cache.get_text(self.defn, stored, _decode_values)
            else:
                features = self.defn.prepare(stored)
            self._features[sid] = features
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
            self._read_keys(missing)
        # the database's rows then the overlay's, at most KEY_CAP + 1 per key (fuzzy's _key_rows)
        counts: dict[Key, int] = {}
        # each usable key's rows by golden id (the database's, then the overlay's)
        usable: list[UsableKey] = []
        for key in keys:
            found = db_rows[key]
            if found is None:
                counts[key] = KEY_CAP + 1
                continue  # too common to block on
            extra = ov_rows.get(key)
            count = len(found) + len(extra) if extra else len(found)
            if count > KEY_CAP:
                counts[key] = KEY_CAP + 1
                continue
            counts[key] = count
            if not count:
                continue
            if not extra:
                usable.append((key, count, [self._groups(key, found)]))
            elif not found:
                usable.append((key, count, [self._ov_groups[key]]))
            else:
                usable.append((key, count, [self._groups(key, found), self._ov_groups[key]]))
        if not usable:
            return self.matcher.decide(defn, []), list(keys)
        found_ids: list[int] = []
        for sids in ranked_rows(rank_candidates(usable), usable):
            found_ids += sids
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
