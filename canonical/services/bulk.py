"""The opt-in bulk ingest path: the state record-by-record ingest leaves, written in bulk.

`source_records_ingest_bulk` takes the same envelopes and returns the same per-record results as
`source_records_ingest` (canonical/services/ingest.py). Per chunk of records:

1. one query for the chunk's source ids that exist already, one for cross-references a push made for new
   ids, one for pending references waiting for them;
2. records in order. A *simple* record — new to the hub, not deleted, valid, its references resolved, the
   matcher saying "new" (a golden record of its own), complete — is accepted in memory: its golden record,
   cross-reference, match keys and outbox event wait to be written together. The match decision is
   canonical/matching/batch.py's: fuzzy's scoring over candidates read in bulk for a window of records plus
   an overlay of what the chunk accepted so far, so a record sees the chunk's earlier records as
   record-by-record ingest would;
3. anything else (an existing source record, a delete, an invalid or incomplete record, an unresolved or
   golden-id reference, a link to or a review against an existing golden record, a record someone waits for)
   first writes what was accepted so far, then goes through the record-by-record pipeline, in order, so the
   result is the one record-by-record ingest gives;
4. the write: SourceRecords, golden records and cross-references with their history rows (actor, channel,
   request id and reason as the `pre_create_historical_record` receiver in canonical/audit.py stamps them —
   simple-history's bulk path sends no signal), MatchKeys, ChangeEvents, and the connectors' outbox fan-out
   (feed entries, deliveries, deal cycles) that the ChangeEvent post_save receiver would have run.

It needs the fuzzy matcher (settings.MDM_MATCHER); with another matcher it is the record-by-record path.
The whole call is one transaction, as `source_records_ingest` is.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Q

from canonical.audit import current_context
from canonical.domains import DomainSpec, get_domain
from canonical.matching.base import get_matcher
from canonical.matching.batch import BatchMatch
from canonical.matching.fuzzy import FuzzyMatcher
from canonical.matching.signals import match_decided
from canonical.models import (
    ChangeEvent,
    ChangeEventType,
    CrossReference,
    GoldenStatus,
    MatchKey,
    PendingReference,
    SourceRecord,
    SourceStatus,
    System,
)
from canonical.services.golden import _apply_values, golden_compute, golden_survivor_map, golden_values
from canonical.services.ingest import (
    _CHUNK,
    Envelope,
    IngestResult,
    _matcher_values,
    content_hash,
    source_records_ingest,
)
from canonical.services.ownership import rules_cached, system_codes
from canonical.services.survivorship import missing_required
from canonical.validation import validate_attributes

_WINDOW = 128  # records whose candidates are read together


@dataclass
class _Accepted:
    """A simple record accepted in memory, waiting to be written."""

    env: Envelope
    temp_id: int
    digest: str
    values: dict[str, Any]
    golden_id: uuid.UUID
    survival: Any
    keys: set[tuple[str, str]]
    result: IngestResult


@dataclass
class _Chunk:
    system: System
    spec: DomainSpec
    batch: BatchMatch
    existing: set[str]
    pushed: set[str]  # new source ids a push already gave a cross-reference
    waiting: set[str]  # source ids some pending reference waits for
    seen: set[str] = field(default_factory=set)
    accepted: list[_Accepted] = field(default_factory=list)
    ref_cache: dict[tuple[str, str, str], uuid.UUID | None] = field(default_factory=dict)
    ov_xrefs: dict[tuple[str, str, str], uuid.UUID] = field(default_factory=dict)
    validated: dict[int, dict | None] = field(default_factory=dict)  # id(envelope) -> valid values or None
    next_temp: int = -1


def source_records_ingest_bulk(*, system: System | str, domain: str, envelopes: list[Envelope]) -> list[IngestResult]:
    """`source_records_ingest` with the simple records written in bulk: same results, same state."""
    spec = get_domain(domain)
    if isinstance(system, str):
        system = System.objects.get(code=system)
    matcher = get_matcher()
    if not isinstance(matcher, FuzzyMatcher):
        return source_records_ingest(system=system, domain=domain, envelopes=envelopes)
    results: list[IngestResult] = []
    with transaction.atomic(), rules_cached():
        for start in range(0, len(envelopes), _CHUNK):
            _chunk_ingest(system, spec, matcher, envelopes[start : start + _CHUNK], results)
    return results


def _chunk_ingest(
    system: System, spec: DomainSpec, matcher: FuzzyMatcher, envelopes: list[Envelope], results: list[IngestResult]
) -> None:
    ids = list(dict.fromkeys(env.source_id for env in envelopes))
    existing = set(
        SourceRecord.objects.filter(system=system, domain=spec.name, source_id__in=ids).values_list(
            "source_id", flat=True
        )
    )
    new_ids = [sid for sid in ids if sid not in existing]
    chunk = _Chunk(
        system=system,
        spec=spec,
        batch=BatchMatch(domain=spec.name, matcher=matcher),
        existing=existing,
        pushed=set(
            CrossReference.objects.filter(system=system, domain=spec.name, source_id__in=new_ids).values_list(
                "source_id", flat=True
            )
        ),
        waiting=_waiting_for(system, spec, ids),
    )
    self_referencing = any(f.ref_domain == spec.name for f in spec.ref_fields)
    prefetched_to = 0  # envelopes[:prefetched_to] have had their candidates read
    for i, env in enumerate(envelopes):
        result = None
        if _maybe_simple(chunk, env):
            if i >= prefetched_to:
                prefetched_to = min(len(envelopes), i + _WINDOW)
                _prefetch(chunk, envelopes[i:prefetched_to])
            result = _accept(chunk, env)
        chunk.seen.add(env.source_id)
        if result is not None:
            results.append(result)
            continue
        # Not simple: write what was accepted, then the record-by-record pipeline for this one.
        _flush(chunk)
        results.extend(source_records_ingest(system=system, domain=spec.name, envelopes=[env]))
        chunk.ref_cache.pop((system.code, spec.name, env.source_id), None)
        if env.source_id in chunk.waiting:
            # Records waiting for it were processed again: read everything again, from the next record on.
            chunk.batch.invalidate()
            chunk.ref_cache.clear()
            prefetched_to = i + 1
        else:
            # It changed itself, its keys and its golden record's values only: patch what was read.
            chunk.batch.refresh(system=system.code, source_ids=[env.source_id])
        if self_referencing:
            # A record of this domain may now wait for a later one of the chunk (a customer's parent).
            chunk.waiting = _waiting_for(system, spec, ids)
    _flush(chunk)


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
    match_values, targets = [], set()
    for env in envelopes:
        if not _maybe_simple(chunk, env):
            continue
        values = _valid_values(chunk, env)
        if values is None:
            continue
        refs = _ref_targets(chunk, values) or []
        targets.update(t for t in refs if t not in chunk.ov_xrefs and t not in chunk.ref_cache)
        match_values.append(_matcher_values(chunk.spec, values))
    chunk.batch.prefetch(match_values)
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


def _accept(chunk: _Chunk, env: Envelope) -> IngestResult | None:
    """Accept a new record in memory if it is simple; None if it must go through the record-by-record path."""
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
    if outcome.decision != "new":
        return None  # link or review: the record-by-record path (its matcher.match sends match_decided)
    temp_id = chunk.next_temp
    sr = SourceRecord(
        pk=temp_id,
        system_id=chunk.system.code,
        domain=spec.name,
        source_id=env.source_id,
        values=values,
        updated_at=env.updated_at,
        status=SourceStatus.APPLIED,
    )
    survival = golden_compute(spec.name, None, [sr])
    if missing_required(spec, survival.values):
        return None  # incomplete: a data-quality exception, from the record-by-record path
    match_decided.send(sender=type(chunk.batch.matcher), domain=spec.name, values=match_values, outcome=outcome)
    chunk.next_temp -= 1
    golden_id = uuid.uuid4()
    result = IngestResult(source_id=env.source_id, outcome="created", golden_id=str(golden_id))
    chunk.accepted.append(
        _Accepted(
            env=env,
            temp_id=temp_id,
            digest=content_hash(env.attributes, env.deleted),
            values=values,
            golden_id=golden_id,
            survival=survival,
            keys=keys,
            result=result,
        )
    )
    chunk.batch.overlay_add(temp_id=temp_id, golden_id=golden_id, values=match_values, keys=keys)
    chunk.ov_xrefs[(chunk.system.code, spec.name, env.source_id)] = golden_id
    return result


def _history_kwargs() -> dict:
    """What canonical.audit._stamp_history puts on every history row (bulk history sends no signal)."""
    ctx = current_context()
    kwargs: dict[str, Any] = {
        "custom_historical_attrs": {
            "history_actor": ctx.actor,
            "history_channel": ctx.channel,
            "history_request_id": ctx.request_id,
        }
    }
    if ctx.user_id is not None:
        kwargs["default_user"] = get_user_model().objects.filter(pk=ctx.user_id).first()
    return kwargs


def _flush(chunk: _Chunk) -> None:
    """Write what the chunk accepted: the state record-by-record ingest leaves for those records."""
    accepted, chunk.accepted = chunk.accepted, []
    chunk.ov_xrefs.clear()
    if not accepted:
        return
    spec, system = chunk.spec, chunk.system
    ctx = current_context()
    history = _history_kwargs()
    model = spec.model

    srs = SourceRecord.objects.bulk_create(
        [
            SourceRecord(
                system=system,
                domain=spec.name,
                source_id=a.env.source_id,
                attributes=a.env.attributes,
                values=a.values,
                updated_at=a.env.updated_at,
                deleted=False,
                content_hash=a.digest,
                status=SourceStatus.APPLIED,
                errors={},
                conflicts={},
                golden_id=a.golden_id,
            )
            for a in accepted
        ]
    )
    real_id = {a.temp_id: sr.pk for a, sr in zip(accepted, srs, strict=True)}
    chunk.batch.overlay_written(real_id)

    goldens = []
    for a in accepted:
        provenance = {
            name: {**entry, "source_record": real_id.get(entry.get("source_record"), entry.get("source_record"))}
            for name, entry in a.survival.provenance.items()
        }
        record = model(pk=a.golden_id, status=GoldenStatus.ACTIVE, version=1, provenance=provenance)
        _apply_values(record, a.survival.values)
        record._change_reason = ctx.reason or f"created from {system.code} {spec.name} {a.env.source_id}"
        goldens.append(record)
    model.objects.bulk_create(goldens)
    model.history.bulk_history_create(goldens, **history)

    xrefs = CrossReference.objects.bulk_create(
        [
            CrossReference(
                system=system, domain=spec.name, source_id=sr.source_id, golden_id=sr.golden_id, source_record=sr
            )
            for sr in srs
        ]
    )
    CrossReference.history.bulk_history_create(xrefs, default_change_reason=ctx.reason or None, **history)

    MatchKey.objects.bulk_create(
        [
            MatchKey(domain=spec.name, key_type=t, key_value=v, golden_id=a.golden_id, source_record_id=sr.pk)
            for a, sr in zip(accepted, srs, strict=True)
            for t, v in a.keys
        ]
    )

    events = ChangeEvent.objects.bulk_create(
        [
            ChangeEvent(
                type=ChangeEventType.CREATED,
                domain=spec.name,
                golden_id=record.pk,
                version=record.version,
                changed_fields=spec.field_names,
                data={
                    "id": str(record.pk),
                    "status": record.status,
                    "version": record.version,
                    **golden_values(record),
                },
                origin_system_id=system.code,
                actor=ctx.actor,
                request_id=ctx.request_id,
            )
            for record in goldens
        ]
    )
    outbox_on_events(events=events)


def outbox_on_events(*, events: list[ChangeEvent]) -> None:
    """connectors' `outbox_on_event` for events written with bulk_create (no post_save): feed entries,
    deliveries and deal cycles, with the push targets worked out once per kind of event."""
    from django.db.models.expressions import RawSQL

    from connectors.models import Delivery, FeedEntry
    from connectors.services.deals import deal_on_event
    from connectors.services.outbox import push_targets, relay_kick

    if not events:
        return
    xid = RawSQL("pg_current_xact_id()::text::bigint", []) if connection.vendor == "postgresql" else 0
    FeedEntry.objects.bulk_create([FeedEntry(event=event, xid=xid) for event in events])
    targets: dict[tuple, list[str]] = {}
    deliveries = []
    for event in events:
        kind = (event.domain, event.type, event.origin_system_id, tuple(event.changed_fields or ()))
        if kind not in targets:
            targets[kind] = push_targets(event)
        deliveries += [
            Delivery(event=event, system_id=code, domain=event.domain, golden_id=event.golden_id, version=event.version)
            for code in targets[kind]
        ]
    if deliveries:
        Delivery.objects.bulk_create(deliveries)
        transaction.on_commit(relay_kick)
    for event in events:
        deal_on_event(event=event)
