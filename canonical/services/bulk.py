"""The opt-in bulk ingest path: the state record-by-record ingest leaves, written in bulk.

`source_records_ingest_bulk` takes the same envelopes and returns the same per-record results as
`source_records_ingest` (canonical/services/ingest.py). Per chunk of records:

1. one query for the chunk's source ids that exist already (with the version each holds), one for
   cross-references a push made for new ids, one for pending references waiting for them;
2. records in order, a window at a time. A *simple* record — new to the hub, not deleted, valid, its references
   resolved, the matcher saying "new" or "review" (a golden record of its own, complete; for a review also the
   steward's review task, as `review_task_open_for_match` opens it) or "link" (to a golden record in
   the database or one the chunk made) — is accepted in memory. The match decision is canonical/matching/
   batch.py's: fuzzy's scoring over candidates read in bulk for a window of records plus an in-memory overlay
   of what the chunk accepted so far, so a record sees the chunk's earlier records as record-by-record ingest
   would. The window is matched first (pass 1); then the golden records it links to are read in bulk (rows,
   live source records, active overrides, open ownership-conflict exceptions) and the window is applied in
   order (pass 2) as `golden_record_create` / `golden_record_apply` would: survivorship, the golden record's
   new version and history row, the ChangeEvent, the non-owners' conflicts and ownership_conflict exceptions;
3. a version of an existing source record that changes nothing (older than the one held, or unchanged:
   `version_held`, record-by-record ingest's own rule) gets its result from the version read in step 1, with
   nothing written;
   anything else (an existing source record, a delete, an invalid or incomplete record, an unresolved or
   golden-id reference, a link that would leave a required field empty or to a golden record that is
   not active or keeps a `retained` value, a record someone waits for) first writes what was accepted so far,
   then goes through the record-by-record pipeline, in order, so the result is the one record-by-record ingest
   gives. When pass 2 meets such a link, the window's later records are matched again after it;
4. the write: SourceRecords, golden records (new and changed) and cross-references with their history rows
   (actor, channel, request id, user and reason as the `pre_create_historical_record` receiver in
   canonical/audit.py stamps them — bulk writes send no signal), MatchKeys, DataExceptions and review tasks with their history,
   the conflicts of source records already in the database, ChangeEvents in the order record-by-record ingest
   writes them, and the connectors' outbox fan-out (feed entries, deliveries, deal cycles) that the
   ChangeEvent post_save receiver would have run.

It needs the fuzzy matcher (settings.MDM_MATCHER); with another matcher it is the record-by-record path.
The whole call is one transaction, as `source_records_ingest` is.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import gc
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import orjson
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.base import ModelState
from django.utils import timezone

from canonical.audit import current_context
from canonical.domains import DomainSpec, get_domain
from canonical.matching.base import get_matcher
from canonical.matching.batch import BatchMatch, KeysAhead
from canonical.matching.fuzzy import FuzzyMatcher, population_add
from canonical.matching.signals import match_decided
from canonical.models import (
    ChangeEvent,
    ChangeEventType,
    CrossReference,
    DataException,
    ExceptionStatus,
    FieldOverride,
    GoldenStatus,
    MatchKey,
    PendingReference,
    SourceRecord,
    SourceStatus,
    System,
)
from canonical.services.golden import (
    _apply_values,
    _provenance_changed,
    _reason,
    change_event_build,
    golden_compute,
    golden_survivor_map,
)
from canonical.services.ingest import (
    _CHUNK,
    Envelope,
    IngestResult,
    _matcher_values,
    content_hash,
    match_lock,
    source_records_ingest,
    version_held,
)
from canonical.services.instances import new_instance as _new
from canonical.services.ownership import rules_cached, system_codes
from canonical.services.survivorship import missing_required
from canonical.sqlparams import id_array
from canonical.validation import validate_attributes

_WINDOW = 128  # records whose candidates (and linked golden records) are read together
_CONFLICT = "ownership_conflict"

# The cyclic garbage collector's first threshold during a bulk call (Python's default: 700 allocations). Matching
# allocates many short-lived containers (scored pairs, rows, candidates) while the process holds many long-lived
# ones (read rows, prepared features), so at the default the collector ran a full collection every few hundred
# records, each walking every object: 86 of them, 10.8 s of a 20,000-record bulk dedup's 49 s CPU (13.2 s in
# collections in all). With this threshold for the whole run: no full collection, 2.7 s in collections, 38 s CPU,
# the same peak RSS (10,000: 5 full ones, 4.2 s). Only cycles are collected less often; reference counting frees
# everything else at once, as before.
_GC_THRESHOLD0 = 50_000
_gc_lock = threading.Lock()
_gc_callers = 0
_gc_saved: tuple[int, ...] = ()


@contextmanager
def _collections_less_often():
    """Raise the collector's first threshold to _GC_THRESHOLD0 (never lower it, nor enable a disabled collector)
    for the duration; the thresholds found are put back when the last concurrent caller leaves. The setting is the
    process's: other threads run with it meanwhile, and a change made elsewhere during the call is undone at its
    end. (Record-by-record ingest does not use it: there it saved ~1 % of CPU, within noise, as that path keeps
    few long-lived objects.)"""
    global _gc_callers, _gc_saved
    with _gc_lock:
        if not _gc_callers:
            _gc_saved = gc.get_threshold()
            if 0 < _gc_saved[0] < _GC_THRESHOLD0:
                gc.set_threshold(_GC_THRESHOLD0, *_gc_saved[1:])
        _gc_callers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_callers -= 1
            if not _gc_callers:
                gc.set_threshold(*_gc_saved)


@dataclass
class _Plan:
    """Pass 1's decision for a record: a new golden record of its own, or a link to `golden_id`."""

    env: Envelope
    sr: SourceRecord  # unsaved, its pk a temporary negative id
    match_values: dict[str, Any]
    outcome: Any
    keys: set[tuple[str, str]]
    golden_id: uuid.UUID
    new: bool
    survival: Any = None  # for a new golden record
    review: bool = False  # the matcher was unsure: a new golden record and a review task for a steward


@dataclass
class _Accepted:
    """A record applied in memory, waiting to be written."""

    env: Envelope
    sr: SourceRecord
    match_values: dict[str, Any]
    keys: set[tuple[str, str]]
    golden_id: uuid.UUID


@dataclass
class _Golden:
    """A golden record as the chunk has made it so far (new, or read from the database and maybe changed)."""

    record: Any
    new: bool
    sources: list[SourceRecord]  # live source records, by pk (the chunk's own, temporary ids, last)
    overrides: dict[str, Any]
    db_sources: list[SourceRecord] = field(default_factory=list)  # its live source records read from the database
    dirty: bool = False  # an existing record that changed: updated when written


@dataclass
class _Exc:
    """An ownership_conflict exception the chunk created or changed (or read, to change it)."""

    obj: DataException
    new: bool
    dirty: bool = False


@dataclass
class _Chunk:
    system: System
    spec: DomainSpec
    batch: BatchMatch
    existing: dict[str, _Held]  # the held version of each source id the database holds
    pushed: set[str]  # new source ids a push already gave a cross-reference
    waiting: set[str]  # source ids some pending reference waits for
    seen: set[str] = field(default_factory=set)
    accepted: list[_Accepted] = field(default_factory=list)
    ref_cache: dict[tuple[str, str, str], uuid.UUID | None] = field(default_factory=dict)
    ov_xrefs: dict[tuple[str, str, str], uuid.UUID] = field(default_factory=dict)
    validated: dict[int, dict | None] = field(default_factory=dict)  # id(envelope) -> valid values or None
    next_temp: int = -1
    # what the accepted records did, until written (all cleared by _flush)
    goldens: dict[uuid.UUID, _Golden | None] = field(default_factory=dict)  # None: read, not linkable in bulk
    open_conflicts: dict[int, list[_Exc]] = field(default_factory=dict)  # source record id -> open exceptions
    excs: list[_Exc] = field(default_factory=list)  # exceptions created or changed, in order
    golden_history: list[tuple[str, str, dict, dt.datetime]] = field(default_factory=list)
    exc_history: list[tuple[_Exc, str, dict, dt.datetime]] = field(default_factory=list)
    events: list[ChangeEvent] = field(default_factory=list)
    conflicted: dict[int, SourceRecord] = field(default_factory=dict)  # database source records whose conflicts changed
    reviews: list[Any] = field(default_factory=list)  # review tasks opened (unsaved ReviewTask, history snapshot)
    review_known: Any = None  # review_survivors of the window's review candidates (nothing is written in pass 2)


def source_records_ingest_bulk(*, system: System | str, domain: str, envelopes: list[Envelope]) -> list[IngestResult]:
    """`source_records_ingest` with the simple records written in bulk: same results, same state."""
    spec = get_domain(domain)
    if isinstance(system, str):
        system = System.objects.get(code=system)
    matcher = get_matcher()
    if not isinstance(matcher, FuzzyMatcher):
        return source_records_ingest(system=system, domain=domain, envelopes=envelopes)
    results: list[IngestResult] = []
    with _collections_less_often(), transaction.atomic(), rules_cached():
        match_lock(spec.name)  # before anything is read (ingest.py: concurrent ingests of duplicates)
        for start in range(0, len(envelopes), _CHUNK):
            _chunk_ingest(system, spec, matcher, envelopes[start : start + _CHUNK], results)
    return results


@dataclass(frozen=True)
class _Held:
    """A held source record's version, as `version_held` reads it."""

    content_hash: str
    updated_at: dt.datetime
    deleted: bool
    golden_id: uuid.UUID | None


def _held_versions(system: System, domain: str, ids: list[str]) -> dict[str, _Held]:
    """The held version of each of these source ids that the database holds."""
    rows = SourceRecord.objects.filter(system=system, domain=domain, source_id__in=ids)
    return {
        sid: _Held(digest, updated_at, deleted, golden_id)
        for sid, digest, updated_at, deleted, golden_id in rows.values_list(
            "source_id", "content_hash", "updated_at", "deleted", "golden_id"
        )
    }


def _unchanging(chunk: _Chunk, env: Envelope) -> IngestResult | None:
    """The result of a record of the chunk that is a version of a held record changing nothing (stale, or
    unchanged: `version_held`), the first time the chunk sees its source id; None otherwise. Nothing is written
    for it and nothing later records match against changes: the chunk goes on without writing what it has."""
    held = chunk.existing.get(env.source_id)
    if held is None or env.source_id in chunk.seen:
        return None
    result = version_held(env, content_hash(env.attributes, env.deleted), held)
    if result is not None:
        chunk.seen.add(env.source_id)
    return result


def _chunk_ingest(
    system: System, spec: DomainSpec, matcher: FuzzyMatcher, envelopes: list[Envelope], results: list[IngestResult]
) -> None:
    ids = list(dict.fromkeys(env.source_id for env in envelopes))
    chunk = _Chunk(
        system=system,
        spec=spec,
        batch=BatchMatch(domain=spec.name, matcher=matcher),
        existing={},
        pushed=set(),
        waiting=set(),
    )
    _look_up(chunk, ids)
    self_referencing = any(f.ref_domain == spec.name for f in spec.ref_fields)
    prefetched_to = 0  # envelopes[:prefetched_to] have had their candidates read
    i, n = 0, len(envelopes)
    while i < n:
        # Pass 1: match a run of simple records (each sees the ones before it through the overlay).
        plans: list[_Plan] = []
        j = i
        while j < n and len(plans) < _WINDOW and _maybe_simple(chunk, envelopes[j]):
            if j >= prefetched_to:
                prefetched_to = min(n, j + _WINDOW)
                _prefetch(chunk, envelopes[j:prefetched_to])
            plan = _plan(chunk, envelopes[j])
            if plan is None:
                break
            plans.append(plan)
            chunk.seen.add(plan.env.source_id)
            j += 1
        # Pass 2: the golden records it links to, read in bulk; then apply in order.
        made = {p.golden_id for p in plans if p.new}
        _load_goldens(
            chunk, {p.golden_id for p in plans if p.golden_id not in chunk.goldens and p.golden_id not in made}
        )
        chunk.review_known = _review_known(chunk, plans)
        for k, plan in enumerate(plans):
            result = _apply(chunk, plan)
            if result is None:  # not linkable in bulk: this record and the ones after it are done again
                for later in plans[k:]:
                    chunk.seen.discard(later.env.source_id)
                    chunk.ov_xrefs.pop((system.code, spec.name, later.env.source_id), None)
                chunk.batch.overlay_clear()
                for a in chunk.accepted:
                    chunk.batch.overlay_add(temp_id=a.sr.pk, golden_id=a.golden_id, values=a.match_values, keys=a.keys)
                j = i + k
                break
            results.append(result)
        else:
            if len(plans) == _WINDOW:  # the window is full and applied: go on with the next one
                i = j
                continue
        i = j
        if i >= n:
            break
        env = envelopes[i]
        unchanging = _unchanging(chunk, env)
        if unchanging is not None:
            results.append(unchanging)
            i += 1
            continue
        # envelopes[i] is not simple: write what was accepted, then the record-by-record pipeline for it.
        chunk.seen.add(env.source_id)
        _flush(chunk)
        results.extend(source_records_ingest(system=system, domain=spec.name, envelopes=[env]))
        chunk.ref_cache.pop((system.code, spec.name, env.source_id), None)
        if env.source_id in chunk.waiting:
            # Records waiting for it were processed again: read everything again, from the next record on (their
            # held versions too: one of them may have a golden record now).
            chunk.batch.invalidate()
            chunk.ref_cache.clear()
            chunk.existing = _held_versions(system, spec.name, ids)
            prefetched_to = i + 1
        else:
            # It changed itself, its keys and its golden record's values only: patch what was read.
            chunk.batch.refresh(system=system.code, source_ids=[env.source_id])
        if self_referencing:
            # A record of this domain may now wait for a later one of the chunk (a customer's parent).
            chunk.waiting = _waiting_for(system, spec, ids)
        i += 1
    _flush(chunk, last=True)


def _look_up(chunk: _Chunk, ids: list[str]) -> None:
    """What the chunk needs to know of these source ids, added to what it knows: the held version of those the
    database holds, which of the others a push gave a cross-reference, which pending references wait for."""
    system, domain = chunk.system, chunk.spec.name
    chunk.existing.update(_held_versions(system, domain, ids))
    new = [sid for sid in ids if sid not in chunk.existing]
    if new:
        chunk.pushed.update(
            CrossReference.objects.filter(system=system, domain=domain, source_id__in=new).values_list(
                "source_id", flat=True
            )
        )
    chunk.waiting.update(_waiting_for(system, chunk.spec, ids))


def _waiting_for(system: System, spec: DomainSpec, ids: list[str]) -> set[str]:
    """The chunk's source ids that pending references wait for (processing them resolves those)."""
    return set(
        PendingReference.objects.filter(
            target_system=system, target_domain=spec.name, target_source_id__in=ids
        ).values_list("target_source_id", flat=True)
    )


def _maybe_simple(chunk: _Chunk, env: Envelope) -> bool:
    sid = env.source_id
    return not (
        env.deleted or sid in chunk.existing or sid in chunk.seen or sid in chunk.pushed or sid in chunk.waiting
    )


def _valid_values(chunk: _Chunk, env: Envelope) -> dict | None:
    """The validated values of a record (a fresh copy), or None if it has errors; validated once per chunk."""
    key = id(env)
    if key not in chunk.validated:
        values, errors = validate_attributes(chunk.spec, env.attributes, system=chunk.system.code)
        chunk.validated[key] = None if errors else values
    values = chunk.validated[key]
    return dict(values) if values is not None else None


def _ref_targets(chunk: _Chunk, values: dict) -> list[tuple[str, str, str]] | None:
    """(system, domain, source_id) of each reference, or None when one is not simple (golden id, unknown system)."""
    targets = []
    for f in chunk.spec.ref_fields:
        ref = values.get(f.name)
        if not isinstance(ref, dict):
            continue
        if "golden_id" in ref or ref.get("system") not in system_codes():
            return None
        targets.append((ref["system"], f.ref_domain, ref["source_id"]))
    return targets


def _prefetch(chunk: _Chunk, envelopes: list[Envelope]) -> None:
    """Read the candidates and reference targets of the simple-looking records among these, in bulk."""
    match_values, targets = _prefetch_values(chunk, envelopes)
    chunk.batch.prefetch(match_values)
    _load_refs_wanted(chunk, targets)


def _prefetch_ahead(chunk: _Chunk, envelopes: list[Envelope], read) -> tuple[KeysAhead, set]:
    """_prefetch's first half for a window matched later (BatchMatch.prefetch_ahead); `_prefetch_resume` ends it."""
    match_values, targets = _prefetch_values(chunk, envelopes)
    return chunk.batch.prefetch_ahead(match_values, read), targets


def _prefetch_resume(chunk: _Chunk, ahead: tuple[KeysAhead, set]) -> None:
    keys_ahead, targets = ahead
    chunk.batch.prefetch_resume(keys_ahead)
    _load_refs_wanted(chunk, targets)


def _prefetch_values(chunk: _Chunk, envelopes: list[Envelope]) -> tuple[list[dict], set]:
    """The matcher values and reference targets of the simple-looking records among these."""
    match_values, targets = [], set()
    for env in envelopes:
        if not _maybe_simple(chunk, env):
            continue
        values = _valid_values(chunk, env)
        if values is None:
            continue
        targets.update(_ref_targets(chunk, values) or ())
        match_values.append(_matcher_values(chunk.spec, values))
    return match_values, targets


def _load_refs_wanted(chunk: _Chunk, targets: set) -> None:
    targets = {t for t in targets if t not in chunk.ov_xrefs and t not in chunk.ref_cache}
    if targets:
        _load_refs(chunk, targets)


def _load_refs(chunk: _Chunk, targets: set[tuple[str, str, str]]) -> None:
    """Resolve references to their survivors: one cross-reference query, one survivor lookup per domain."""
    found: dict[tuple[str, str, str], uuid.UUID] = {}
    targets = list(targets)
    for start in range(0, len(targets), 300):
        q = Q()
        for system, domain, source_id in targets[start : start + 300]:
            q |= Q(system_id=system, domain=domain, source_id=source_id)
        for system, domain, source_id, golden_id in CrossReference.objects.filter(q).values_list(
            "system_id", "domain", "source_id", "golden_id"
        ):
            found[(system, domain, source_id)] = golden_id
    by_domain: dict[str, set[uuid.UUID]] = {}
    for (_, domain, _), golden_id in found.items():
        by_domain.setdefault(domain, set()).add(golden_id)
    survivors = {domain: golden_survivor_map(domain, ids) for domain, ids in by_domain.items()}
    for target in targets:
        golden_id = found.get(target)
        chunk.ref_cache[target] = survivors[target[1]].get(golden_id) if golden_id is not None else None


def _plan(chunk: _Chunk, env: Envelope, *, survival: bool = True) -> _Plan | None:
    """Pass 1 for a new record: validate, resolve references, match. None if the record-by-record path must
    take it (invalid, a reference that waits, a review, a new golden record that would be incomplete).

    `survival=False` (the pipelined matcher, whose writer works survivorship out again): a new golden record's
    survivorship is left out of the plan, and its content hash too; whether the golden record would be incomplete
    is told from the record's own values, which is the same: survivorship over one source and no overrides takes
    each field the source gives (its references resolved above to golden ids) and nothing else."""
    spec = chunk.spec
    values = _valid_values(chunk, env)
    if values is None:
        return None
    targets = _ref_targets(chunk, values)
    if targets is None:
        return None
    if any(t not in chunk.ov_xrefs and t not in chunk.ref_cache for t in targets):
        _load_refs(chunk, {t for t in targets if t not in chunk.ov_xrefs and t not in chunk.ref_cache})
    for f in spec.ref_fields:
        ref = values.get(f.name)
        if not isinstance(ref, dict):
            continue
        target = (ref["system"], f.ref_domain, ref["source_id"])
        golden_id = chunk.ov_xrefs.get(target) or chunk.ref_cache.get(target)
        if golden_id is None:
            return None  # waits for its target: the record-by-record path holds it
        values[f.name] = {**ref, "golden_id": str(golden_id)}
    match_values = _matcher_values(spec, values)
    outcome, key_list = chunk.batch.match(values=match_values)
    keys = set(key_list)  # as the MatchKey rows record-by-record ingest writes (a set)
    if outcome.decision not in ("new", "link", "review"):
        return None
    temp_id = chunk.next_temp
    sr = _new(
        SourceRecord,
        pk=temp_id,
        system_id=chunk.system.code,
        domain=spec.name,
        source_id=env.source_id,
        attributes=env.attributes,
        values=values,
        updated_at=env.updated_at,
        deleted=False,
        content_hash=content_hash(env.attributes, env.deleted) if survival else "",
        status=SourceStatus.APPLIED,
        errors={},
        conflicts={},
    )
    survived = None
    if outcome.decision != "link":  # new, or review: a golden record of its own either way
        if survival:
            survived = golden_compute(spec.name, None, [sr])
        if missing_required(spec, survived.values if survival else values):
            return None  # incomplete: a data-quality exception, from the record-by-record path
        golden_id = uuid.uuid4()
    else:
        golden_id = uuid.UUID(str(outcome.golden_id))
    chunk.next_temp -= 1
    sr.golden_id = golden_id
    chunk.batch.overlay_add(temp_id=temp_id, golden_id=golden_id, values=match_values, keys=keys)
    chunk.ov_xrefs[(chunk.system.code, spec.name, env.source_id)] = golden_id
    return _Plan(
        env=env,
        sr=sr,
        match_values=match_values,
        outcome=outcome,
        keys=keys,
        golden_id=golden_id,
        new=outcome.decision != "link",
        survival=survived,
        review=outcome.decision == "review",
    )


def _load_goldens(chunk: _Chunk, golden_ids: set[uuid.UUID]) -> None:
    """Read the golden records these links go to, with their live sources, active overrides and the open
    ownership-conflict exceptions of those sources: four queries for a window. A golden record that is not
    simply active (merged, inactive, keeping a `retained` value) is marked None: its links go record by record."""
    if not golden_ids:
        return
    spec = chunk.spec
    records = {
        r.pk: r for r in _read(spec.model, "id", list(golden_ids), tail="ORDER BY updated_at DESC, id", lock=True)
    }
    usable = []
    for golden_id in golden_ids:
        record = records.get(golden_id)
        if (
            record is None
            or record.merged_into_id is not None
            or record.status != GoldenStatus.ACTIVE
            or any(p.get("rule") == "retained" for p in (record.provenance or {}).values())
        ):
            chunk.goldens[golden_id] = None
        else:
            usable.append(golden_id)
            chunk.goldens[golden_id] = _Golden(record=record, new=False, sources=[], overrides={})
    if not usable:
        return
    # what pass 2 and the write read of a source record: not its `attributes` and `errors` (left deferred)
    sr_columns = [f.column for f in SourceRecord._meta.concrete_fields if f.attname not in ("attributes", "errors")]
    for sr in _sources_of(spec.name, usable, sr_columns):
        golden = chunk.goldens[sr.golden_id]
        golden.sources.append(sr)
        golden.db_sources.append(sr)
        chunk.open_conflicts.setdefault(sr.pk, [])
    for o in _read(
        FieldOverride,
        "golden_id",
        usable,
        columns=["id", "golden_id", "field", "value"],
        where="domain = %s AND is_active = %s",
        params=[spec.name, True],
    ):  # at most one active override per field (a constraint): in no particular order
        chunk.goldens[o.golden_id].overrides[o.field] = o.value
    sr_ids = [sr.pk for g in usable for sr in chunk.goldens[g].sources]
    for start in range(0, len(sr_ids), 5000):
        for exc in _open_conflicts(sr_ids[start : start + 5000]):
            chunk.open_conflicts[exc.source_record_id].append(_Exc(obj=exc, new=False))


def _sources_of(domain: str, golden_ids: list[uuid.UUID], columns: list[str]) -> list:
    """The live applied source records of these golden records, by id (`columns` read, the others deferred).

    On PostgreSQL each golden record's by the (domain, golden_id) index, whatever the statistics say: with
    statistics older than a table that grew by tens of thousands of committed rows (a CLI bulk load between two
    autovacuum analyses), the planner read every applied record of the domain through the status index for each
    window (612 reads of 15-60 ms, 26 s of a 98,599-record committed deduplication). The OFFSET 0 fence keeps the
    other conditions out of the per-golden-record scan."""
    if connection.vendor != "postgresql":
        return _read(
            SourceRecord,
            "golden_id",
            golden_ids,
            columns=columns,
            where="domain = %s AND deleted = %s AND status = %s",
            params=[domain, False, SourceStatus.APPLIED.value],
            tail="ORDER BY id",
        )
    quote = connection.ops.quote_name
    fields = [f for f in SourceRecord._meta.concrete_fields if f.column in columns]
    inner = ", ".join(quote(c) for c in dict.fromkeys([*(f.column for f in fields), "deleted", "status"]))
    sql = (
        f"SELECT {', '.join(f's.{quote(f.column)}' for f in fields)} "
        f"FROM unnest(%s::uuid[]) AS u(golden_id) CROSS JOIN LATERAL "
        f"(SELECT {inner} FROM {quote(SourceRecord._meta.db_table)} WHERE domain = %s AND golden_id = u.golden_id "
        "OFFSET 0) AS s WHERE s.deleted = %s AND s.status = %s ORDER BY s.id"
    )
    params = [id_array(dict.fromkeys(golden_ids)), domain, False, SourceStatus.APPLIED.value]
    return _instances(SourceRecord, fields, sql, params)


def _open_conflicts(sr_ids: list[int]) -> list:
    """The open ownership-conflict exceptions of these source records (each read once, however often listed),
    newest first.

    On PostgreSQL each source record's exceptions by the source_record_id index, whatever the statistics say: a
    table that grew in this transaction has none, and the planner then took the (status, kind) queue index and
    read every open conflict of the domain for each window (12.6 s of a 98,599-record deduplication, most of a
    query's 16-50 ms). The OFFSET 0 fence keeps kind and status out of the per-record scan."""
    if connection.vendor != "postgresql":
        return _read(
            DataException,
            "source_record_id",
            sr_ids,
            where="kind = %s AND status = %s",
            params=[_CONFLICT, ExceptionStatus.OPEN.value],
            tail="ORDER BY created_at DESC, id",
        )
    quote = connection.ops.quote_name
    fields = list(DataException._meta.concrete_fields)
    sql = (
        f"SELECT {', '.join(f'd.{quote(f.column)}' for f in fields)} "
        f"FROM unnest(%s::bigint[]) AS u(source_record_id) CROSS JOIN LATERAL "
        f"(SELECT * FROM {quote(DataException._meta.db_table)} WHERE source_record_id = u.source_record_id OFFSET 0) "
        "AS d WHERE d.kind = %s AND d.status = %s ORDER BY d.created_at DESC, d.id"
    )
    params = [id_array(dict.fromkeys(sr_ids)), _CONFLICT, ExceptionStatus.OPEN.value]
    return _instances(DataException, fields, sql, params)


def _read(
    model, key: str, ids: list, *, columns: list[str] | None = None, where: str = "", params=(), tail="", lock=False
) -> list:
    """`model` instances whose field `key` (an attname) is one of `ids` and for which `where` holds: `key = ANY(%s)`
    on PostgreSQL, the ids one array parameter (`__in` prepares and quotes every id one by one, and the query is
    compiled each time: most of what reading a window's golden records cost). `columns`: the ones read (the pk
    among them), the others left deferred; `tail`: ORDER BY; `lock`: FOR UPDATE, as select_for_update."""
    if not ids:
        return []
    quote = connection.ops.quote_name
    field = model._meta.get_field(key)
    if connection.vendor == "postgresql":
        match, match_params = f"{quote(field.column)} = ANY(%s::{field.db_type(connection)}[])", [id_array(ids)]
    else:
        match = f"{quote(field.column)} IN ({', '.join(['%s'] * len(ids))})"
        match_params = [field.get_db_prep_value(v, connection) for v in ids]
    fields = [f for f in model._meta.concrete_fields if not columns or f.column in columns]
    select = ", ".join(quote(f.column) for f in fields)
    sql = f"SELECT {select} FROM {quote(model._meta.db_table)} WHERE {match}" + (f" AND {where}" if where else "")
    if lock and connection.features.has_select_for_update:
        tail += " FOR UPDATE"
    return _instances(model, fields, f"{sql} {tail}", [*match_params, *params])


def _instances(model, fields: list, sql: str, params: list) -> list:
    """The rows of `sql` (selecting `fields`' columns, in that order) as `model` instances loaded from the
    database, the fields not read deferred: what `Model.from_db` gives, less its cost. The values go through the
    converters the ORM applies (JSON decoded, ...), then into the instance's __dict__ as `Model.__init__` would
    put them there (no model here defines __init__, and pre_init/post_init have no receiver on these models);
    a RawQuerySet spent about half of reading a window's golden records on its own machinery."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    converting = []
    for i, f in enumerate(fields):
        col = f.get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if found:
            converting.append((i, found, col))
    attnames = [f.attname for f in fields]
    alias = connection.alias
    new = model.__new__
    out = []
    for row in rows:
        if converting:
            row = list(row)
            for i, found, col in converting:
                value = row[i]
                for convert in found:
                    value = convert(value, col, connection)
                row[i] = value
        instance = new(model)
        state = instance._state = ModelState()
        state.adding = False
        state.db = alias
        instance.__dict__.update(zip(attnames, row, strict=True))
        out.append(instance)
    return out


_tracked: dict[type, tuple[tuple[str, ...], attrgetter]] = {}


def _tracked_names(model) -> tuple[str, ...]:
    """The attnames of the fields simple-history tracks for `model` (read once per model)."""
    return _tracked_fields(model)[0]


def _tracked_fields(model) -> tuple[tuple[str, ...], attrgetter]:
    if model not in _tracked:  # `Model.history` builds a manager class on every access: once per model
        names = tuple(f.attname for f in model.history.model.tracked_fields)
        _tracked[model] = (names, attrgetter(*names))
    return _tracked[model]


def _snapshot(record) -> dict:
    """The values simple-history copies into a history row (its tracked fields), as they are now."""
    names, get = _tracked_fields(type(record))
    values = get(record)
    return dict(zip(names, values if len(names) > 1 else (values,), strict=True))


def _event(chunk: _Chunk, record, event_type: str, changed_fields: list[str]) -> None:
    chunk.events.append(
        change_event_build(
            record=record, event_type=event_type, changed_fields=changed_fields, origin_system=chunk.system.code
        )
    )


def _apply(chunk: _Chunk, plan: _Plan) -> IngestResult | None:
    """Pass 2: what `source_record_process` does for this new record, in memory. None if it must go record by
    record after all (a link that would leave a required field empty, or to a golden record not linkable)."""
    spec, sr, golden_id = chunk.spec, plan.sr, plan.golden_id
    now = timezone.now()
    if plan.new:
        survival = plan.survival
        record = _new(spec.model, pk=golden_id, status=GoldenStatus.ACTIVE, version=1, provenance=survival.provenance)
        _apply_values(record, survival.values)
        record.created_at = record.updated_at = now
        match_decided.send(
            sender=type(chunk.batch.matcher), domain=spec.name, values=plan.match_values, outcome=plan.outcome
        )
        chunk.goldens[golden_id] = _Golden(record=record, new=True, sources=[sr], overrides={})
        reason = current_context().reason or f"created from {chunk.system.code} {spec.name} {sr.source_id}"
        chunk.golden_history.append(("+", reason, _snapshot(record), now))
        _event(chunk, record, ChangeEventType.CREATED, spec.field_names)
        if plan.review:
            _review_open(chunk, plan, now)
        outcome = "created"
    else:
        golden = chunk.goldens.get(golden_id)
        if golden is None:
            return None
        record = golden.record
        sources = [*golden.sources, sr]
        survival = golden_compute(spec.name, golden_id, sources, overrides=golden.overrides)
        if missing_required(spec, survival.values):
            return None  # no `retained` values here (_load_goldens): an `incomplete` exception, record by record
        match_decided.send(
            sender=type(chunk.batch.matcher), domain=spec.name, values=plan.match_values, outcome=plan.outcome
        )
        changed = _apply_values(record, survival.values)
        provenance_changed = _provenance_changed(record.provenance, survival.provenance)
        _sync_conflicts(chunk, sources, survival, now)
        golden.sources.append(sr)
        if changed or provenance_changed:
            record.provenance = survival.provenance
            record.version += 1
            record.updated_at = now
            golden.dirty = not golden.new
            chunk.golden_history.append(
                ("~", _reason(chunk.system.code, changed, provenance_changed), _snapshot(record), now)
            )
            if changed:
                _event(chunk, record, ChangeEventType.UPDATED, changed)
        outcome = "linked"
    chunk.accepted.append(
        _Accepted(env=plan.env, sr=sr, match_values=plan.match_values, keys=plan.keys, golden_id=golden_id)
    )
    return IngestResult(source_id=sr.source_id, outcome=outcome, golden_id=str(golden_id))


def _review_known(chunk: _Chunk, plans: list[_Plan]):
    """What review_candidates_filter reads of the golden ids the window's reviews name, read once for all of them
    (golden records made in memory are not found, and are `fresh` to it anyway)."""
    from stewardship.services.reviews import review_survivors

    wanted = {c.golden_id for p in plans if p.review for c in p.outcome.candidates if c.golden_id}
    return review_survivors(chunk.spec.name, wanted) if wanted else ({}, set())


def _review_open(chunk: _Chunk, plan: _Plan, now: dt.datetime) -> None:
    """stewardship's `review_task_open_for_match` for a record the matcher was unsure about, in memory: the same
    candidate filter, the chunk's new golden records (not written yet) counted as active survivors of their own."""
    from stewardship.models import ReviewStatus, ReviewTask
    from stewardship.services.reviews import review_candidates_filter, review_priority

    spec = chunk.spec
    kept = review_candidates_filter(
        domain=spec.name,
        golden_id=plan.golden_id,
        source_record_ids=[],  # not written yet: no not-a-match can name it
        candidates=plan.outcome.candidates,
        fresh={g for g, golden in chunk.goldens.items() if golden is not None and golden.new},
        known=chunk.review_known,
    )
    if not kept:
        return
    task = _new(
        ReviewTask,
        domain=spec.name,
        golden_id=plan.golden_id,
        source_record_id=plan.sr.pk,  # temporary until written
        candidates=kept,
        score=kept[0]["score"],
        reason=kept[0]["reason"],
        status=ReviewStatus.OPEN,
        priority=review_priority(kept),
        created_by=current_context().actor,
        created_at=now,
        updated_at=now,
    )
    chunk.reviews.append(task)


def _sync_conflicts(chunk: _Chunk, sources: list[SourceRecord], survival, now: dt.datetime) -> None:
    """golden.py's `_sync_conflicts` in memory: each source's conflicts, its ownership_conflict exception raised
    (created, or the open one refreshed) or closed, as `exception_raise` / `exception_close` would."""
    for sr in sources:
        conflicts = survival.conflicts.get(sr.pk, {})
        previous = sr.conflicts
        if sr.conflicts != conflicts:
            sr.conflicts = conflicts
            if sr.pk > 0:
                chunk.conflicted[sr.pk] = sr
        open_excs = chunk.open_conflicts.setdefault(sr.pk, [])
        if conflicts:
            fields = ", ".join(sorted(conflicts))
            owner = next(iter(conflicts.values()))["owner"]
            message = f"{sr.system_id} disagrees with the owner ({owner}) on {fields}; its value is kept, not applied"
            detail = {"conflicts": conflicts}
            if open_excs:
                exc = open_excs[0]
                obj = exc.obj
                if obj.message != message or obj.detail != detail or obj.golden_id != sr.golden_id:
                    obj.message, obj.detail, obj.golden_id = message, detail, sr.golden_id
                    obj.updated_at = now
                    _exc_changed(chunk, exc, "~", now)
            else:
                obj = _new(
                    DataException,
                    kind=_CONFLICT,
                    message=message,
                    detail=detail,
                    source_record_id=sr.pk,
                    golden_id=sr.golden_id,
                    domain=sr.domain,
                    system_id=sr.system_id,
                    status=ExceptionStatus.OPEN,
                    created_at=now,
                    updated_at=now,
                )
                exc = _Exc(obj=obj, new=True)
                open_excs.append(exc)
                _exc_changed(chunk, exc, "+", now)
        elif previous:
            for exc in open_excs:
                obj = exc.obj
                obj.status = ExceptionStatus.RESOLVED
                obj.resolution_note = "the conflict went away"
                obj.resolved_at = now
                obj.updated_at = now
                _exc_changed(chunk, exc, "~", now)
            open_excs.clear()


def _exc_changed(chunk: _Chunk, exc: _Exc, history_type: str, now: dt.datetime) -> None:
    if not exc.dirty:
        exc.dirty = True
        chunk.excs.append(exc)
    chunk.exc_history.append((exc, history_type, _snapshot(exc.obj), now))


def _history_rows(
    model,
    values: dict[str, list],
    *,
    history_type: list[str],
    reason: list[str | None],
    date: list[dt.datetime],
) -> None:
    """History rows as the `pre_create_historical_record` receiver (canonical/audit.py) stamps them, given as
    columns: `values` the tracked fields ({attname: [value, ...]}), one row per item of `history_type`."""
    n = len(history_type)
    if not n:
        return
    ctx = current_context()
    _insert_columns(
        _history_model(model),
        n,
        {
            "history_date": date,
            "history_type": history_type,
            "history_change_reason": reason,
            "history_user_id": [ctx.user_id] * n,
            "history_actor": [ctx.actor] * n,
            "history_channel": [ctx.channel] * n,
            "history_request_id": [ctx.request_id] * n,
            **values,
        },
    )


def _snapshot_columns(model, snapshots: list[dict]) -> dict[str, list]:
    """`_snapshot`s of `model` records as columns."""
    return {name: [s[name] for s in snapshots] for name in _tracked_names(model)}


_history_models: dict[type, type] = {}


def _history_model(model) -> type:
    if model not in _history_models:
        _history_models[model] = model.history.model
    return _history_models[model]


# --- writing: COPY on PostgreSQL, bulk_create elsewhere ------------------------------------------------------
#
# COPY is given each value as `Field.get_db_prep_save(value, connection)` returns it, or as something COPY writes
# the same way. That call costs a couple of microseconds (a chain of prep methods, and the `connection` proxy
# resolved through asgiref's Local for each value) and a flush makes hundreds of thousands of them. So a column
# is prepared at once (`_prep_column`): for the field classes whose conversion of a value type is known — the
# value itself (text, UUID, bool; an int, which COPY writes as it writes the Int4 the adapter would wrap it in),
# its JSON text (what COPY writes for the Jsonb the adapter gives), or one call of the backend's adapter
# (serial ids, aware datetimes) — that conversion is applied to the column when every value in it has such a
# type, with the connection resolved once; any other column goes through get_db_prep_save value by value.
# tests/canonical/test_bulk_write.py checks the shortcuts against it, and that COPY writes them alike.

_NONE_TYPE = type(None)
_JSON_TYPES = (dict, list, str, int, float, bool)
_kinds: dict[int, tuple[str, Any]] = {}  # id(field) -> (kind, the field whose conversion applies)
_type_ok: dict[tuple[str, type], bool] = {}


def _kind(field) -> tuple[str, Any]:
    """How `field.get_db_prep_save` converts its common values: "same", "uuid", "bool", "int" (the value itself,
    or what COPY writes alike), "json" (its text), "autopk", "datetime" (one call of the backend's adapter),
    or "" (none known: get_db_prep_save itself, value by value); with the field doing the conversion (a foreign
    key's target)."""
    key = id(field)
    if key not in _kinds:
        _kinds[key] = _kind_of(field)
    return _kinds[key]


def _kind_of(field) -> tuple[str, Any]:
    from django.db.models import (
        BooleanField,
        CharField,
        DateTimeField,
        ForeignKey,
        IntegerField,
        JSONField,
        TextField,
        UUIDField,
    )
    from django.db.models.fields import AutoFieldMixin, Field

    cls = type(field)
    if isinstance(field, ForeignKey):
        # None -> None; "" -> None when the target does not allow empty strings (no shortcut takes a str then).
        if (
            cls.get_db_prep_save is not ForeignKey.get_db_prep_save
            or connection.features.interprets_empty_strings_as_nulls
        ):
            return "", field
        kind, target = _kind(field.target_field)
        return (kind, target) if kind in ("same", "uuid", "autopk", "int") else ("", field)
    save, value, prep, to_python = cls.get_db_prep_save, cls.get_db_prep_value, cls.get_prep_value, cls.to_python
    if save is JSONField.get_db_prep_save:
        ok = value is JSONField.get_db_prep_value and prep is Field.get_prep_value
        return ("json" if ok else ""), field
    if save is not Field.get_db_prep_save:
        return "", field
    if value is Field.get_db_prep_value and (prep, to_python) in (
        (CharField.get_prep_value, CharField.to_python),
        (TextField.get_prep_value, TextField.to_python),
    ):
        return "same", field
    if value is Field.get_db_prep_value and (prep, to_python) == (BooleanField.get_prep_value, BooleanField.to_python):
        return "bool", field
    if value is UUIDField.get_db_prep_value and connection.features.has_native_uuid_field:
        return "uuid", field
    if value is IntegerField.get_db_prep_value and prep is IntegerField.get_prep_value:
        return "int", field
    if value is AutoFieldMixin.get_db_prep_value and prep is IntegerField.get_prep_value:
        return "autopk", field
    if (value, prep, to_python) == (
        DateTimeField.get_db_prep_value,
        DateTimeField.get_prep_value,
        DateTimeField.to_python,
    ):
        return "datetime", field
    return "", field


def _accepts(kind: str, t: type) -> bool:
    """Whether the shortcut of `kind` gives get_db_prep_save's result for a (non-None) value of type `t`."""
    key = (kind, t)
    if key not in _type_ok:
        if kind == "same":  # CharField/TextField: get_prep_value returns a str (or str subclass) as it is
            ok = issubclass(t, str) and not hasattr(t, "as_sql")
        elif kind == "uuid":  # UUIDField on a backend with native UUIDs: a UUID as it is
            ok = issubclass(t, uuid.UUID) and not hasattr(t, "as_sql")
        elif kind == "bool":  # BooleanField: bool(True) is True
            ok = t is bool
        elif kind in ("int", "autopk"):  # int(value) is value for an int
            ok = t is int
        elif kind == "datetime":  # to_python returns a datetime as it is (an aware one: checked per value)
            ok = t is dt.datetime
        elif kind == "json":
            ok = t in _JSON_TYPES
        else:
            ok = False
        _type_ok[key] = ok
    return _type_ok[key]


def _prep_column(field, values: list, conn) -> list:
    """[field.get_db_prep_save(v, conn) for v in values] (or what COPY writes alike), by the field's shortcut where
    it applies."""
    kind, leaf = _kind(field)
    if kind and all(_accepts(kind, t) for t in set(map(type, values)) if t is not _NONE_TYPE):
        if kind in ("same", "uuid", "bool"):
            return values
        if kind == "json":
            return _json_texts(values, leaf.encoder)
        if kind == "int":  # the int itself: COPY writes it as it writes the backend's Int2/Int4/Int8 wrapper of it
            return values
        if kind == "autopk":
            validate = conn.ops.validate_autopk_value
            return [None if v is None else validate(v) for v in values]
        if kind == "datetime":
            from django.conf import settings

            # An aware datetime goes to the adapter as it is; a naive one (a warning, made aware) takes the long way.
            if not settings.USE_TZ or all(v is None or v.utcoffset() is not None for v in values):
                adapt = conn.ops.adapt_datetimefield_value
                return [None if v is None else adapt(v) for v in values]
    save = field.get_db_prep_save
    return [save(v, conn) for v in values]


# A JSON value is handed to COPY as its text: json.dumps's with the field's encoder, or orjson's text of the same
# JSON value (`_json_dumps`), which a jsonb column stores alike (PostgreSQL parses either; every JSONField is jsonb
# there). Inside `_json_once` (a flush) each value object is encoded once, however many rows it goes to; the memo
# keeps each value, so its id is not reused, and it is dropped when the flush ends (the values are not changed
# while it is written).
_json_memo: contextvars.ContextVar[dict | None] = contextvars.ContextVar("bulk_json_memo", default=None)


@contextmanager
def _json_once() -> Iterator[None]:
    token = _json_memo.set({})
    try:
        yield
    finally:
        _json_memo.reset(token)


# datetimes (date, time) and dataclasses go to the encoder's default(), as json.dumps sends them: orjson writes its
# own forms of them otherwise (DjangoJSONEncoder writes a datetime to the millisecond)
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _json_dumps(encoder) -> Callable[[Any], str]:
    """A column's encoder: the text of the JSON value json.dumps(v, cls=encoder) writes, by orjson in a fifth to a
    tenth of the time (timeit: 3.4 -> 0.6 us a CRM row's values, 12.5 -> 1.0 us a golden record's provenance).
    What orjson would not write as json.dumps does, it refuses (TypeError): a dict key that is not a str, an int
    past 64 bits, a type the encoder's default() does not know, a lone surrogate; that value is then json.dumps's,
    which writes it or raises as before. The texts differ only where jsonb values do not: spaces, and characters
    past ASCII written as themselves rather than as \\u escapes. Three kinds of value differ: a UUID and an Enum
    member that is neither a str nor an int, which json.dumps refuses without an encoder and orjson writes (as
    its str, its value), and a float that is not finite, which json.dumps writes as NaN or Infinity (PostgreSQL
    refuses the row) and orjson as null. The hub's JSON fields hold JSON-ready values (golden.to_json), input
    holding NaN or Infinity is refused before (validation's `unstorable`), and the record-by-record path would
    fail on any of them."""
    slow = encoder().encode if encoder else json.dumps
    default = encoder().default if encoder else None
    fast = orjson.dumps

    def dumps(value) -> str:
        try:
            return fast(value, default, _ORJSON_OPTIONS).decode()
        except TypeError:
            return slow(value)

    return dumps


def _json_texts(values: list, encoder) -> list:
    dumps = _json_dumps(encoder)  # one encoder for the column
    memo = _json_memo.get()
    if memo is None:
        return [None if v is None else dumps(v) for v in values]
    memo = memo.setdefault(encoder, {})  # id(value) -> (value, text)
    texts = []
    for v in values:
        if v is None:
            texts.append(None)
            continue
        known = memo.get(id(v))
        if known is None:
            known = memo[id(v)] = (v, dumps(v))
        texts.append(known[1])
    return texts


def _copy(table: str, columns: list[str], rows) -> None:
    from psycopg import sql

    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        write_row = copy.write_row
        for row in rows:
            write_row(row)


def _copy_columns(table: str, fields: list, columns: list[list], conn) -> None:
    """COPY rows given as one list of values per field, each prepared as get_db_prep_save would."""
    _copy(
        table,
        [f.column for f in fields],
        zip(*(_prep_column(f, values, conn) for f, values in zip(fields, columns, strict=True)), strict=True),
    )


def _default_connection():
    from django.db import DEFAULT_DB_ALIAS, connections

    return connections[DEFAULT_DB_ALIAS]


def _serial_pk(meta):
    return meta.pk if meta.pk.get_internal_type() in ("AutoField", "BigAutoField") else None


def _new_ids(model, count: int) -> list[int]:
    """`count` primary keys drawn from the table's sequence, ascending (as one multi-row INSERT would get them)."""
    meta = model._meta
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [connection.ops.quote_name(meta.db_table), meta.pk.column, count],
        )
        return sorted(row[0] for row in cursor.fetchall())


def _plain_pre_save(f) -> bool:
    """Whether `f.pre_save(obj, True)` is just the instance's value."""
    from django.db.models import DateField, DateTimeField
    from django.db.models.fields import Field

    pre_save = type(f).pre_save
    if pre_save is Field.pre_save:
        return True
    return pre_save in (DateTimeField.pre_save, DateField.pre_save) and not (f.auto_now or f.auto_now_add)


def _insert(model, objs: list, *, ids: bool = False) -> list:
    """INSERT these unsaved instances as bulk_create would (auto_now fields set, pks set on the instances):
    COPY on PostgreSQL, its serial pks drawn from the sequence first when `ids`; bulk_create elsewhere."""
    if not objs:
        return objs
    conn = _default_connection()
    if conn.vendor != "postgresql":
        return model.objects.bulk_create(objs)
    meta = model._meta
    auto_pk = _serial_pk(meta)
    if auto_pk is not None and ids:
        for obj, pk in zip(objs, _new_ids(model, len(objs)), strict=True):
            obj.pk = pk
    fields = [f for f in meta.concrete_fields if f is not auto_pk or ids]
    # pre_save's own values (auto_now: the time, set on the instance) taken row by row, field by field, as
    # bulk_create takes them; the other fields' values as they are on the instances.
    special = [f for f in fields if not _plain_pre_save(f)]
    taken: dict[Any, list] = {f: [] for f in special}
    if special:
        for obj in objs:
            for f in special:
                taken[f].append(f.pre_save(obj, True))
    _copy_columns(
        meta.db_table,
        fields,
        [taken[f] if f in taken else [getattr(obj, f.attname) for obj in objs] for f in fields],
        conn,
    )
    for obj in objs:
        obj._state.adding = False
        obj._state.db = "default"
    return objs


def _insert_columns(model, n: int, given: dict[str, list], *, ids: bool = False) -> dict[str, list]:
    """INSERT `n` rows given as columns ({attname: [value, ...]}) as bulk_create would write instances made with
    those values: a field not given its default (per row), an auto_now/auto_now_add field the time of writing
    (row by row, field by field, as pre_save takes it), the serial pk drawn from the sequence first when `ids`
    (else left to the database). COPY on PostgreSQL without making instances; bulk_create elsewhere. Returns
    the columns written, the pk's when `ids`, and the auto_now ones."""
    if not n:
        return {}
    from django.db.models import DateTimeField

    meta = model._meta
    auto_pk = _serial_pk(meta)
    conn = _default_connection()
    columns = dict(given)
    if conn.vendor != "postgresql":
        objs = [model(**{name: column[i] for name, column in given.items()}) for i in range(n)]
        model.objects.bulk_create(objs)
        for f in meta.concrete_fields:
            if f.attname not in columns and (f is not auto_pk or ids):
                columns[f.attname] = [getattr(obj, f.attname) for obj in objs]
        return columns
    if auto_pk is not None and ids:
        columns[auto_pk.attname] = _new_ids(model, n)
    fields = [f for f in meta.concrete_fields if f is not auto_pk or ids]
    stamped = []
    for f in fields:
        if f.attname in columns:
            continue
        if _plain_pre_save(f):
            get_default = f.get_default
            columns[f.attname] = [get_default() for _ in range(n)]
        elif type(f).pre_save is DateTimeField.pre_save:  # auto_now or auto_now_add: timezone.now()
            stamped.append(f)
        else:
            raise ValueError(f"{meta.label}.{f.name}: a value is needed")
    if stamped:
        times: list[list] = [[] for _ in stamped]
        now = timezone.now
        for _ in range(n):
            for column in times:
                column.append(now())
        for f, column in zip(stamped, times, strict=True):
            columns[f.attname] = column
    _copy_columns(meta.db_table, fields, [columns[f.attname] for f in fields], conn)
    return columns


def _update(model, objs: list, field_names: list[str]) -> None:
    """UPDATE these saved instances' fields as bulk_update would (values as they are on the instances, no
    pre_save): on PostgreSQL one COPY into a temporary table and one UPDATE … FROM it (bulk_update's CASE WHEN
    per row and field costs milliseconds of query building per record); bulk_update elsewhere."""
    if not objs:
        return
    conn = _default_connection()
    if conn.vendor != "postgresql":
        model.objects.bulk_update(objs, field_names)
        return
    from psycopg import sql

    meta = model._meta
    fields = [meta.get_field(name) for name in field_names]
    pk = meta.pk
    table, temp = meta.db_table, f"_mdm_update_{meta.db_table}"
    columns = [pk.column] + [f.column for f in fields]
    ident = sql.Identifier
    with connection.cursor() as cursor:
        create = sql.SQL("CREATE TEMPORARY TABLE IF NOT EXISTS {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA")
        cursor.execute(
            create.format(ident(temp), sql.SQL(", ").join(ident(c) for c in columns), ident(table)).as_string(
                cursor.cursor
            )
        )
        cursor.execute(sql.SQL("TRUNCATE {}").format(ident(temp)).as_string(cursor.cursor))
    _copy_columns(
        temp,
        [pk, *fields],
        [[obj.pk for obj in objs]] + [[getattr(obj, f.attname) for obj in objs] for f in fields],
        conn,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("UPDATE {} AS t SET {} FROM {} AS s WHERE t.{} = s.{}")
            .format(
                ident(table),
                sql.SQL(", ").join(sql.SQL("{} = s.{}").format(ident(f.column), ident(f.column)) for f in fields),
                ident(temp),
                ident(pk.column),
                ident(pk.column),
            )
            .as_string(cursor.cursor)
        )


def _real_provenance(provenance: dict | None, real_id: dict[int, int], memo: dict) -> dict | None:
    """Provenance with the chunk's temporary source record ids replaced by the written ones. Once per provenance
    object (`memo`: id -> (it, the result), it kept so its id is not reused): a golden record's row and its
    history row share it, and then share the result too, so its JSON is encoded once (`_json_once`)."""
    if not provenance:
        return provenance
    key = id(provenance)
    if key in memo:
        return memo[key][1]
    for entry in provenance.values():
        ref = entry.get("source_record")
        if isinstance(ref, int) and ref < 0:
            real = {
                name: (
                    {**entry, "source_record": real_id[entry["source_record"]]}
                    if isinstance(entry.get("source_record"), int) and entry["source_record"] < 0
                    else entry
                )
                for name, entry in provenance.items()
            }
            break
    else:
        real = provenance
    memo[key] = (provenance, real)
    return real


def _flush(chunk: _Chunk, *, last: bool = False) -> None:
    """Write what the chunk accepted: the state record-by-record ingest leaves for those records. `last`: the
    chunk's final write, after which its BatchMatch is not used again (so it is not brought up to date)."""
    accepted, chunk.accepted = chunk.accepted, []
    goldens, chunk.goldens = chunk.goldens, {}
    excs, chunk.excs = chunk.excs, []
    golden_history, chunk.golden_history = chunk.golden_history, []
    exc_history, chunk.exc_history = chunk.exc_history, []
    events, chunk.events = chunk.events, []
    conflicted, chunk.conflicted = chunk.conflicted, {}
    reviews, chunk.reviews = chunk.reviews, []
    chunk.open_conflicts = {}
    chunk.ov_xrefs.clear()
    if not accepted:
        return
    with _json_once():  # a value written to two rows (a golden record's and its history row's) encoded once
        spec, system = chunk.spec, chunk.system
        ctx = current_context()
        model = spec.model
        n = len(accepted)

        # The source records, as columns (no instances: only their ids are needed further on).
        source_ids = [a.sr.source_id for a in accepted]
        golden_ids = [a.golden_id for a in accepted]
        written = _insert_columns(
            SourceRecord,
            n,
            {
                "system_id": [system.pk] * n,
                "domain": [spec.name] * n,
                "source_id": source_ids,
                "attributes": [a.sr.attributes for a in accepted],
                "values": [a.sr.values for a in accepted],
                "updated_at": [a.sr.updated_at for a in accepted],
                "deleted": [False] * n,
                "content_hash": [a.sr.content_hash for a in accepted],
                "status": [SourceStatus.APPLIED] * n,
                "errors": [{} for _ in range(n)],
                "conflicts": [a.sr.conflicts for a in accepted],
                "golden_id": golden_ids,
            },
            ids=True,
        )
        sr_ids = written["id"]
        population_add(spec.name, n)  # n more live applied source records (before anything reads the count again)
        real_id = {a.sr.pk: pk for a, pk in zip(accepted, sr_ids, strict=True)}
        rewritten: dict[int, tuple] = {}  # _real_provenance's memo
        # the features the matcher prepared for these records, for a later chunk that reads them back as candidates
        chunk.batch.prepared_written([(a.sr.pk, a.sr.values) for a in accepted])
        if not last:  # the chunk goes on with this BatchMatch: what it accepted is in the database now
            chunk.batch.overlay_written(real_id)
            # overlay_written keeps only the chunk's own sources of a golden record it links to: read its others again.
            linked_db = [
                g for g in goldens.values() if g is not None and not g.new and len(g.sources) > len(g.db_sources)
            ]
            by_system: dict[str, list[str]] = {}
            for g in linked_db:
                for sr in g.db_sources:
                    by_system.setdefault(sr.system_id, []).append(sr.source_id)
            for code, ids in by_system.items():
                chunk.batch.refresh(system=code, source_ids=ids)

        new_records, changed_records = [], []
        for g in goldens.values():
            if g is None or not (g.new or g.dirty):
                continue
            g.record.provenance = _real_provenance(g.record.provenance, real_id, rewritten)
            (new_records if g.new else changed_records).append(g.record)
        _insert(model, new_records)
        if changed_records:
            fields = [f.name for f in model._meta.concrete_fields if not f.primary_key and f.name != "created_at"]
            _update(model, changed_records, fields)
        if golden_history:
            values = _snapshot_columns(model, [snap for _, _, snap, _ in golden_history])
            values["provenance"] = [_real_provenance(p, real_id, rewritten) for p in values["provenance"]]
            _history_rows(
                model,
                values,
                history_type=[t for t, _, _, _ in golden_history],
                reason=[reason for _, reason, _, _ in golden_history],
                date=[date for _, _, _, date in golden_history],
            )

        xrefs = _insert_columns(
            CrossReference,
            n,
            {
                "system_id": [system.pk] * n,
                "domain": [spec.name] * n,
                "source_id": source_ids,
                "golden_id": golden_ids,
                "source_record_id": sr_ids,
            },
            ids=True,
        )
        _history_rows(
            CrossReference,
            {name: xrefs[name] for name in _tracked_names(CrossReference)},
            history_type=["+"] * n,
            reason=[ctx.reason or None] * n,
            date=[timezone.now() for _ in range(n)],
        )

        # the keys' columns built a record at a time (a flush writes ten or so per record)
        key_types, key_values, key_goldens, key_srs = [], [], [], []
        for a, pk in zip(accepted, sr_ids, strict=True):
            if a.keys:
                types, texts = zip(*a.keys, strict=True)
                key_types += types
                key_values += texts
                key_goldens += [a.golden_id] * len(types)
                key_srs += [pk] * len(types)
        _insert_columns(
            MatchKey,
            len(key_types),
            {
                "domain": [spec.name] * len(key_types),
                "key_type": key_types,
                "key_value": key_values,
                "golden_id": key_goldens,
                "source_record_id": key_srs,
            },
        )

        if excs:
            for exc in excs:
                if exc.obj.source_record_id < 0:
                    exc.obj.source_record_id = real_id[exc.obj.source_record_id]
            created = [exc.obj for exc in excs if exc.new]
            _insert(DataException, created, ids=True)
            changed_excs = [exc.obj for exc in excs if not exc.new]
            if changed_excs:
                _update(
                    DataException,
                    changed_excs,
                    ["message", "detail", "golden_id", "status", "resolution_note", "resolved_at", "updated_at"],
                )
            if exc_history:
                values = _snapshot_columns(DataException, [snap for _, _, snap, _ in exc_history])
                values["id"] = [exc.obj.pk for exc, _, _, _ in exc_history]
                values["source_record_id"] = [exc.obj.source_record_id for exc, _, _, _ in exc_history]
                _history_rows(
                    DataException,
                    values,
                    history_type=[t for _, t, _, _ in exc_history],
                    reason=[ctx.reason or None] * len(exc_history),
                    date=[date for _, _, _, date in exc_history],
                )
        if conflicted:
            _update(SourceRecord, list(conflicted.values()), ["conflicts"])
        _reviews_write(reviews, real_id)

        outbox_on_events(events=_insert(ChangeEvent, events, ids=True))


def _reviews_write(reviews: list, real_id: dict[int, int]) -> None:
    """The review tasks the chunk opened, with their history rows, once their source records are written."""
    if not reviews:
        return
    from stewardship.models import ReviewTask

    for task in reviews:
        task.source_record_id = real_id[task.source_record_id]
    _insert(ReviewTask, reviews, ids=True)
    reason = current_context().reason or None
    _history_rows(
        ReviewTask,
        _snapshot_columns(ReviewTask, [_snapshot(task) for task in reviews]),
        history_type=["+"] * len(reviews),
        reason=[reason] * len(reviews),
        date=[task.created_at for task in reviews],
    )


def outbox_on_events(*, events: list[ChangeEvent]) -> None:
    """connectors' `outbox_on_event` for events written with bulk_create (no post_save): feed entries,
    deliveries and deal cycles, with the push targets worked out once per kind of event."""
    from connectors.models import Delivery, FeedEntry
    from connectors.services.deals import deal_on_event
    from connectors.services.outbox import push_connections, push_targets, relay_kick

    if not events:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id()::text::bigint")
            xid = cursor.fetchone()[0]
    else:
        xid = 0
    _insert_columns(FeedEntry, len(events), {"event_id": [event.pk for event in events], "xid": [xid] * len(events)})
    targets: dict[tuple, list[str]] = {}
    connections = None  # read once for the whole flush
    deliveries = []
    for event in events:
        kind = (event.domain, event.type, event.origin_system_id, tuple(event.changed_fields or ()))
        if kind not in targets:
            if connections is None:
                connections = push_connections()
            targets[kind] = push_targets(event, connections)
        deliveries += [
            Delivery(event=event, system_id=code, domain=event.domain, golden_id=event.golden_id, version=event.version)
            for code in targets[kind]
        ]
    if deliveries:
        Delivery.objects.bulk_create(deliveries)
        transaction.on_commit(relay_kick)
    for event in events:
        deal_on_event(event=event)
