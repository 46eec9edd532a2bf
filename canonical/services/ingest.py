"""The ingest pipeline: receive → validate → resolve references → match → survive → publish.

The same functions serve REST, the CLI and connectors. A batch is one transaction with an outcome per record;
each record's changes (golden row, history, outbox event) are written together, and an unexpected error
rolls the whole batch back, so nothing is half-applied.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import hashlib
import json
import logging
import uuid
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from canonical.domains import DOMAINS, DomainSpec, get_domain
from canonical.matching.base import get_matcher
from canonical.matching.base import matcher_values as _matcher_values
from canonical.matching.fuzzy import common_keys_forget, population_add
from canonical.models import (
    CrossReference,
    DataException,
    ExceptionStatus,
    MatchKey,
    PendingReference,
    SourceRecord,
    SourceStatus,
    System,
)
from canonical.services import exceptions as exc_service
from canonical.services.golden import (
    golden_compute,
    golden_record_apply,
    golden_record_create,
    golden_record_recompute,
    golden_survivor_id,
    golden_survivor_lock,
    live_sources,
)
from canonical.services.ownership import rules_cached, system_codes
from canonical.services.survivorship import missing_required
from canonical.validation import storable_text, unknown_attributes, unstorable, validate_attributes

logger = logging.getLogger(__name__)


class EnvelopeError(ValueError):
    """A payload that is not a source record at all (HTTP 400 / CLI line error). Carries field messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class Envelope:
    source_id: str
    updated_at: dt.datetime
    deleted: bool
    attributes: dict[str, Any]


@dataclass
class IngestResult:
    source_id: str
    outcome: str  # created | updated | linked | unchanged | stale | deleted | exception | held
    golden_id: str | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)
    message: str = ""

    def as_dict(self) -> dict:
        data = asdict(self)
        if not data["errors"]:
            data.pop("errors")
        if not data["message"]:
            data.pop("message")
        return data


def _parse_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        text = str(value).strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        parsed = dt.datetime.fromisoformat(text)
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def envelope_parse(payload: Any, *, spec: DomainSpec, allow_unknown: bool = False) -> Envelope:
    """Check the shape of one ingest object; raise EnvelopeError with field-level messages if it is wrong.

    Also refused here, whatever channel it came by (API, file, connector): a source id or attribute holding
    what cannot be stored (`unstorable`: a NUL character, an unpaired surrogate, NaN or Infinity, ...) and an
    `updated_at` outside the years 1–9999 once in UTC."""
    if not isinstance(payload, dict):
        raise EnvelopeError({"non_field_errors": ["expected an object with source_id, updated_at, attributes"]})
    errors: dict[str, list[str]] = {}
    unknown_keys = set(payload) - {"source_id", "updated_at", "deleted", "attributes"}
    if unknown_keys:
        errors["non_field_errors"] = [f"unknown key(s): {', '.join(storable_text(sorted(unknown_keys)))}"]
    source_id = payload.get("source_id")
    if isinstance(source_id, (int,)) and not isinstance(source_id, bool):
        source_id = str(source_id)
    if not isinstance(source_id, str) or not source_id.strip():
        errors["source_id"] = ["this field is required (a non-empty string)"]
    elif len(source_id.strip()) > 255:
        errors["source_id"] = ["longer than 255 characters"]
    elif (bad := unstorable(source_id)) is not None:
        errors["source_id"] = [bad[1]]
    updated_at = timezone.now()
    if payload.get("updated_at") not in (None, ""):
        try:
            # in UTC: PostgreSQL refuses offsets past ±15:59 (Python reads up to ±23:59), and 9999-12-31T23:00-12:00
            # is in the year 10000 there (OverflowError)
            updated_at = _parse_datetime(payload["updated_at"]).astimezone(dt.UTC)
        except (ValueError, TypeError, OverflowError):
            errors["updated_at"] = [
                f"{str(payload['updated_at'])[:100]!r} is not an ISO 8601 date-time between the years 1 and 9999 "
                "(in UTC)"
            ]
    deleted = payload.get("deleted", False)
    if deleted in (None, ""):
        deleted = False
    if isinstance(deleted, str) and deleted.lower() in ("true", "false", "1", "0"):
        deleted = deleted.lower() in ("true", "1")
    if not isinstance(deleted, bool):
        errors["deleted"] = ["must be true or false"]
    attributes = payload.get("attributes", {})
    if attributes is None:
        attributes = {}
    if not isinstance(attributes, dict):
        errors["attributes"] = ["must be an object of canonical field names"]
    else:
        if not allow_unknown:
            unknown = unknown_attributes(spec, attributes)
            if unknown:
                errors["attributes"] = [
                    f"unknown field(s) for {spec.name}: {', '.join(storable_text(unknown))}; "
                    f"expected some of {', '.join(spec.field_names)}"
                ]
        if allow_unknown:
            attributes = {k: v for k, v in attributes.items() if spec.get(k) is not None}
        for name, value in attributes.items():
            if type(value) is str and value.isascii() and "\x00" not in value and spec.get(name) is not None:
                continue  # the common case, decided without a call: a known field's plain text
            bad = unstorable(name) or unstorable(value)
            if bad is not None:
                errors.setdefault("attributes", []).append(f"{name}{bad[0]}: {bad[1]}")
    if errors:
        raise EnvelopeError(errors)
    return Envelope(source_id=source_id.strip(), updated_at=updated_at, deleted=deleted, attributes=attributes)


# json.dumps with these options makes an encoder a call; the hash is taken for every record received
_HASH_JSON = json.JSONEncoder(sort_keys=True, default=str, separators=(",", ":"))


def content_hash(attributes: dict, deleted: bool) -> str:
    blob = _HASH_JSON.encode({"a": attributes, "d": deleted})
    return hashlib.sha256(blob.encode()).hexdigest()


# --- per-batch knowledge ----------------------------------------------------------------------------------
#
# A batch knows, for the records it inserted itself, that they have no exceptions, pending references,
# match keys or cross-references yet (except cross-references a push created), so it asks the database
# nothing about them. Records that existed before are asked once each, lazily.


@dataclass
class _Batch:
    system: str
    domain: str
    xrefs: dict[str, CrossReference | None]  # source_id -> xref of this (system, domain), for new records
    waiting: set[str]  # source_ids of this (system, domain) that some pending reference points at
    records: dict[str, SourceRecord] = field(default_factory=dict)  # source_id -> the instance being processed


_batch: contextvars.ContextVar[_Batch | None] = contextvars.ContextVar("mdm_ingest_batch", default=None)


def _in_batch(system: str, domain: str, source_id: str) -> _Batch | None:
    batch = _batch.get()
    if batch is not None and batch.system == system and batch.domain == domain and source_id in batch.records:
        return batch
    return None


def _open_kinds(sr: SourceRecord) -> set[str]:
    """Kinds of the open exceptions of a source record (asked once per record, then kept up to date)."""
    kinds = getattr(sr, "_open_kinds", None)
    if kinds is None:
        kinds = set(
            DataException.objects.filter(source_record=sr, status=ExceptionStatus.OPEN).values_list("kind", flat=True)
        )
        sr._open_kinds = kinds
    return kinds


def _exception_raise(sr: SourceRecord, *, kind: str, **kwargs) -> None:
    exc_service.exception_raise(kind=kind, source_record=sr, **kwargs)
    _open_kinds(sr).add(kind)


def _exception_close(sr: SourceRecord, *, kind: str, note: str) -> None:
    if kind in _open_kinds(sr):
        exc_service.exception_close(kind=kind, source_record=sr, note=note)
        sr._open_kinds.discard(kind)


def _pending_of(sr: SourceRecord) -> dict[str, PendingReference]:
    pending = getattr(sr, "_pending", None)
    if pending is None:
        pending = {p.field: p for p in PendingReference.objects.filter(source_record=sr)}
        sr._pending = pending
    return pending


def _keys_of(sr: SourceRecord) -> set[tuple[str, str, uuid.UUID]]:
    keys = getattr(sr, "_keys", None)
    if keys is None:
        keys = set(MatchKey.objects.filter(source_record=sr).values_list("key_type", "key_value", "golden_id"))
        sr._keys = keys
    return keys


def _xref_of(sr: SourceRecord) -> CrossReference | None:
    batch = _in_batch(sr.system_id, sr.domain, sr.source_id)
    if batch is not None and sr.source_id in batch.xrefs:
        return batch.xrefs[sr.source_id]
    xref = CrossReference.objects.filter(system_id=sr.system_id, domain=sr.domain, source_id=sr.source_id).first()
    if batch is not None:
        batch.xrefs[sr.source_id] = xref
    return xref


# --- references -------------------------------------------------------------------------------------------


class _UnknownGolden(ValueError):
    pass


def reference_resolve(ref: dict, target_domain: str) -> uuid.UUID | None:
    """A parsed reference → the survivor's golden id, or None if the target has not arrived yet."""
    if "golden_id" in ref:
        survivor = golden_survivor_id(target_domain, ref["golden_id"])
        if survivor is None:
            raise _UnknownGolden(f"no {target_domain} with golden id {ref['golden_id']}")
        return survivor
    batch = _batch.get()
    if batch is not None and (batch.system, batch.domain) == (ref["system"], target_domain):
        if ref["source_id"] in batch.xrefs:  # a record of this batch: its xref (or its lack of one) is known
            xref = batch.xrefs[ref["source_id"]]
            return golden_survivor_id(target_domain, xref.golden_id) if xref is not None else None
    golden_id = (
        CrossReference.objects.filter(system_id=ref["system"], domain=target_domain, source_id=ref["source_id"])
        .values_list("golden_id", flat=True)
        .first()
    )
    return golden_survivor_id(target_domain, golden_id) if golden_id else None


def _resolve_references(spec: DomainSpec, values: dict, errors: dict) -> dict[str, dict]:
    """Resolve reference values in place; return {field: reference} of those still waiting for their target."""
    wanted: dict[str, dict] = {}
    for f in spec.ref_fields:
        ref = values.get(f.name)
        if not isinstance(ref, dict):
            continue
        if "system" in ref and ref["system"] not in system_codes():
            errors.setdefault(f.name, []).append(f"unknown system '{ref['system']}' in reference")
            continue
        try:
            golden_id = reference_resolve(ref, f.ref_domain)
        except _UnknownGolden as exc:
            errors.setdefault(f.name, []).append(str(exc))
            continue
        if golden_id is None:
            wanted[f.name] = ref
        else:
            values[f.name] = {**ref, "golden_id": str(golden_id)}
    return wanted


def _sync_pending(sr: SourceRecord, spec: DomainSpec, wanted: dict[str, dict]) -> None:
    if not spec.ref_fields:
        return
    existing = _pending_of(sr)
    for name, pending in list(existing.items()):
        ref = wanted.get(name)
        if ref is None or (pending.target_system_id, pending.target_source_id) != (ref["system"], ref["source_id"]):
            pending.delete()
            del existing[name]
    batch = _batch.get()
    for name, ref in wanted.items():
        if name in existing:
            continue
        target_domain = spec.get(name).ref_domain
        existing[name] = PendingReference.objects.create(
            source_record=sr,
            field=name,
            target_system_id=ref["system"],
            target_domain=target_domain,
            target_source_id=ref["source_id"],
        )
        if batch is not None and (batch.system, batch.domain) == (ref["system"], target_domain):
            batch.waiting.add(ref["source_id"])


# --- the pipeline ----------------------------------------------------------------------------------------


def _keys_sync(sr: SourceRecord, keys: list[tuple[str, str]]) -> None:
    current = _keys_of(sr)
    wanted = {(t, v, sr.golden_id) for t, v in keys} if sr.golden_id and sr.is_live else set()
    if current == wanted:
        return
    if current:
        MatchKey.objects.filter(source_record=sr).delete()
        common_keys_forget(sr.domain, current, wanted)
    MatchKey.objects.bulk_create(
        [MatchKey(domain=sr.domain, key_type=t, key_value=v, golden_id=g, source_record=sr) for t, v, g in wanted]
    )
    sr._keys = wanted


def _xref_link(sr: SourceRecord, golden_id: uuid.UUID) -> None:
    xref = _xref_of(sr)
    if xref is None:
        xref = CrossReference.objects.create(
            system_id=sr.system_id, domain=sr.domain, source_id=sr.source_id, golden_id=golden_id, source_record=sr
        )
        batch = _in_batch(sr.system_id, sr.domain, sr.source_id)
        if batch is not None:
            batch.xrefs[sr.source_id] = xref
    elif xref.golden_id != golden_id or xref.source_record_id != sr.pk:
        xref.golden_id = golden_id
        xref.source_record = sr
        xref.save()


def _source_save(sr: SourceRecord, *, was_live: bool) -> None:
    """Save a source record being processed; if it became live and applied, or stopped being, the matcher's
    population (the live applied count term frequencies divide by) moves with it at once, before anything
    matches again: a cached count follows the load as an exact count would (fuzzy.population_add)."""
    sr.save()
    if sr.is_live != was_live:
        population_add(sr.domain, 1 if sr.is_live else -1)


def _process_deleted(sr: SourceRecord, result: IngestResult, *, was_live: bool) -> IngestResult:
    previous_golden = sr.golden_id
    sr.status = SourceStatus.DELETED
    _source_save(sr, was_live=was_live)
    _keys_sync(sr, [])
    for kind in ("validation", "incomplete", "unresolved_reference"):
        _exception_close(sr, kind=kind, note="deleted in its system")
    # Conflicts are synced by other records' recomputes too, so ask the database rather than what sr knows.
    exc_service.exception_close(kind="ownership_conflict", source_record=sr, note="deleted in its system")
    if _pending_of(sr):
        PendingReference.objects.filter(source_record=sr).delete()
        sr._pending = {}
    if previous_golden:
        golden_record_recompute(domain=sr.domain, golden_id=previous_golden, origin_system=sr.system_id)
    result.outcome = "deleted"
    result.golden_id = str(previous_golden) if previous_golden else None
    return result


def source_record_process(sr: SourceRecord, *, spec: DomainSpec) -> IngestResult:
    """Validate, resolve, match and survive one received source record (already saved with its attributes)."""
    result = IngestResult(source_id=sr.source_id, outcome="unchanged")
    previous_golden = sr.golden_id
    # Whether it counts in the matcher's population as stored: by its status alone, as `deleted` may have just
    # been set from the envelope (a record stored as deleted has status DELETED: _process_deleted).
    was_live = sr.status == SourceStatus.APPLIED

    if sr.deleted:
        return _process_deleted(sr, result, was_live=was_live)

    values, errors = validate_attributes(spec, sr.attributes, system=sr.system_id)
    pending = _resolve_references(spec, values, errors) if not errors else {}

    if errors:
        sr.errors = errors
        if sr.golden_id is None:
            sr.status = SourceStatus.INVALID
        _source_save(sr, was_live=was_live)
        _exception_raise(
            sr,
            kind="validation",
            golden_id=sr.golden_id,
            message=f"{sr.system_id} {spec.name} {sr.source_id}: "
            + "; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()),
            detail={"errors": errors},
        )
        result.outcome, result.errors = "exception", errors
        result.golden_id = str(sr.golden_id) if sr.golden_id else None
        result.message = "invalid values: kept as a data-quality exception, not applied"
        return result
    _sync_pending(sr, spec, pending)
    _exception_close(sr, kind="validation", note="a valid version arrived")
    sr.errors = {}

    required_pending = [name for name in pending if spec.get(name).required]
    if required_pending:
        # A required reference waits for its target. A record already applied keeps its last applied version
        # contributing to the golden record until then; a new one is held.
        if sr.status != SourceStatus.APPLIED or sr.golden_id is None:
            sr.values = values
            sr.status = SourceStatus.PENDING_REFERENCE
        _source_save(sr, was_live=was_live)
        targets = {name: values[name] for name in required_pending}
        _exception_raise(
            sr,
            kind="unresolved_reference",
            golden_id=sr.golden_id if sr.status == SourceStatus.APPLIED else None,
            message=f"{sr.system_id} {spec.name} {sr.source_id} waits for "
            + ", ".join(f"{name} → {t['system']}:{t['source_id']}" for name, t in targets.items()),
            detail={"pending": targets},
        )
        result.outcome = "held"
        result.golden_id = str(sr.golden_id) if sr.status == SourceStatus.APPLIED else None
        result.message = "held until the referenced record arrives: " + ", ".join(required_pending)
        return result
    if not pending:
        _exception_close(sr, kind="unresolved_reference", note="references resolved")

    matcher = get_matcher()
    match_values = _matcher_values(spec, values)
    record = None  # the survivor golden record this source record belongs to, locked
    review_outcome = None  # stewardship review hook: set when the matcher is unsure (decision "review")
    if sr.golden_id:
        record = golden_survivor_lock(domain=spec.name, golden_id=sr.golden_id)
    if record is None:
        xref = _xref_of(sr)
        if xref is not None:
            record = golden_survivor_lock(domain=spec.name, golden_id=xref.golden_id)
    if record is None:
        outcome = matcher.match(domain=spec.name, values=match_values, exclude_source_record=sr.pk)
        if outcome.decision == "link":
            record = golden_survivor_lock(domain=spec.name, golden_id=outcome.golden_id)
        elif outcome.decision == "review":
            review_outcome = outcome

    old_values = sr.values
    old_status = sr.status
    sr.values = values
    sr.status = SourceStatus.APPLIED
    if record is None:
        survival = golden_compute(spec.name, None, [sr])
        missing = missing_required(spec, survival.values)
        if missing:
            sr.status = SourceStatus.INCOMPLETE
            _source_save(sr, was_live=was_live)
            _exception_raise(
                sr,
                kind="incomplete",
                message=f"{sr.system_id} {spec.name} {sr.source_id} lacks required field(s): {', '.join(missing)}",
                detail={"missing": missing},
            )
            result.outcome = "exception"
            result.errors = {name: ["this field is required"] for name in missing}
            result.message = "incomplete: kept as a data-quality exception, not applied"
            return result
        sr.golden_id = uuid.uuid4()
        _source_save(sr, was_live=was_live)
        golden_record_create(
            domain=spec.name, sources=[sr], origin_system=sr.system_id, survival=survival, golden_id=sr.golden_id
        )
        result.outcome = "created"
        if review_outcome is not None:
            # Stewardship review hook: the record gets its own golden record (as for "new") and a review task
            # with the candidates and their explanation (one pending task per golden record: idempotent).
            from stewardship.services.reviews import review_task_open_for_match

            review_task_open_for_match(source_record=sr, outcome=review_outcome)
    else:
        golden_id = record.pk
        candidate_sources = [s for s in live_sources(spec.name, golden_id) if s.pk != sr.pk] + [sr]
        survival = golden_compute(spec.name, golden_id, candidate_sources)
        # A field the golden record already keeps without a live source (rule `retained`) is not this
        # record's doing: it must not block the record's other values.
        missing = [
            name
            for name in missing_required(spec, survival.values)
            if record.provenance.get(name, {}).get("rule") != "retained"
        ]
        if missing:
            # Keep the last applied version contributing; a record never applied is held as incomplete.
            sr.values = old_values
            sr.status = old_status if old_status == SourceStatus.APPLIED else SourceStatus.INCOMPLETE
            _source_save(sr, was_live=was_live)
            _exception_raise(
                sr,
                kind="incomplete",
                golden_id=golden_id,
                message=f"{sr.system_id} {spec.name} {sr.source_id} would leave required field(s) empty: "
                + ", ".join(missing),
                detail={"missing": missing},
            )
            result.outcome = "exception"
            result.errors = {name: ["this field is required"] for name in missing}
            result.golden_id = str(golden_id)
            return result
        sr.golden_id = golden_id
        _source_save(sr, was_live=was_live)
        _, changed = golden_record_apply(
            record=record, sources=candidate_sources, survival=survival, origin_system=sr.system_id
        )
        result.outcome = "linked" if previous_golden != golden_id else ("updated" if changed else "unchanged")
    _exception_close(sr, kind="incomplete", note="now complete")
    _xref_link(sr, sr.golden_id)
    _keys_sync(sr, matcher.keys(domain=spec.name, values=match_values))
    result.golden_id = str(sr.golden_id)
    _resolve_waiting(sr)
    return result


def _resolve_waiting(target: SourceRecord) -> None:
    """Re-process source records that were waiting for this one."""
    batch = _in_batch(target.system_id, target.domain, target.source_id)
    if batch is not None and target.source_id not in batch.waiting:
        return
    waiting = PendingReference.objects.filter(
        target_system_id=target.system_id, target_domain=target.domain, target_source_id=target.source_id
    ).select_related("source_record")
    seen = set()
    for pending in waiting:
        sr = pending.source_record
        if sr.pk in seen:
            continue
        seen.add(sr.pk)
        source_record_reprocess(sr)


# Matching decides against what is committed. Two transactions that each ingest one of a pair of duplicates at
# the same time (CRM's and ERP's pulls of the same client, two webhooks) would each find no candidate and make a
# golden record each. So every transaction that ingests records of a domain first takes match locks (PostgreSQL
# advisory locks held until it ends): the second waits for the first to commit, then finds its records.
#
# Which locks: the domain's, and those of every domain that refers to it, directly or not (a customer's: customer,
# contract, project, rate card), because ingesting a record also processes, in the same transaction, the records
# of other domains that a reference to it held back. All of them are taken at once, in one fixed order, before the
# ingest locks any record (a caller may hold rows of its own, a webhook's say, which no ingest waits for): no
# transaction asks for a match lock while holding records another lock holder may want, nor takes two in an order
# another could reverse, so ingests cannot deadlock on them. The records a reference released are processed under
# locks the transaction already holds (a referring domain's set is within the referred one's). The price: every
# set holds the project lock (projects refer to every domain but rate cards, which reach them through contracts),
# so ingests run one at a time across the hub. Re-taking locks already held costs a round trip. Steward merges
# and batch re-matches join existing golden records under row locks and make none, so they take none.
_MATCH_LOCK_CLASS = 0x4D444D  # "MDM": the first key of pg_advisory_xact_lock(int, int)


def _match_lock_id(domain: str) -> int:
    """A domain's lock: fixed by its name (not by its place among the domains), so processes of two releases with
    different domains still exclude each other."""
    return zlib.crc32(f"mdm-match:{domain}".encode()) & 0x7FFFFFFF


@functools.cache
def match_lock_domains(domain: str) -> tuple[str, ...]:
    """The domain and every domain whose records refer to it, directly or through others."""
    found, todo = {domain}, [domain]
    while todo:
        target = todo.pop()
        for name, spec in DOMAINS.items():
            if name not in found and any(f.ref_domain == target for f in spec.ref_fields):
                found.add(name)
                todo.append(name)
    return tuple(sorted(found, key=_match_lock_id))


def match_lock(domain: str) -> None:
    """Hold the match locks of `domain` (match_lock_domains) until the current transaction ends, taken in one
    statement in a fixed order (PostgreSQL; elsewhere nothing: on SQLite the settings make every transaction take
    the write lock at its start, which serialises ingests as these locks do)."""
    if connection.vendor != "postgresql":
        return
    ids = [_match_lock_id(d) for d in match_lock_domains(domain)]
    calls = ", ".join("pg_advisory_xact_lock(%s, %s)" for _ in ids)  # evaluated left to right
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {calls}", [v for i in ids for v in (_MATCH_LOCK_CLASS, i)])


def source_record_reprocess(sr: SourceRecord) -> IngestResult:
    """Run the pipeline again on a stored source record (a reference arrived, a rule changed, a retry)."""
    with transaction.atomic():
        match_lock(sr.domain)
        batch = _in_batch(sr.system_id, sr.domain, sr.source_id)
        if batch is not None:
            locked = batch.records[sr.source_id]  # the batch holds its lock and its up-to-date instance
        else:
            locked = SourceRecord.objects.select_for_update().get(pk=sr.pk)
        return source_record_process(locked, spec=get_domain(locked.domain))


def version_held(env: Envelope, digest: str, held) -> IngestResult | None:
    """The result of a version of a record whose held version (`held`: its content_hash, updated_at, deleted and
    golden_id, a SourceRecord or the like) it changes nothing of: older than it, or a version with the same
    updated_at that loses to it, or the same content at the same time. None: the version is to be processed.
    The bulk paths ask this of the versions they read (stale and unchanged come out the same, with nothing read
    or written again)."""
    golden_id = str(held.golden_id) if held.golden_id else None
    if env.updated_at < held.updated_at:
        return IngestResult(
            source_id=env.source_id,
            outcome="stale",
            golden_id=golden_id,
            message=f"older than the version held ({held.updated_at.isoformat()}); ignored",
        )
    if env.updated_at == held.updated_at and (env.deleted, digest) < (held.deleted, held.content_hash):
        # Two different versions with the same updated_at: keep one by a fixed rule (a delete first, then
        # the greater content hash) so that the outcome does not depend on arrival order and a replay of
        # the same versions changes nothing.
        return IngestResult(
            source_id=env.source_id,
            outcome="stale",
            golden_id=golden_id,
            message=f"another version with the same updated_at ({held.updated_at.isoformat()}) is held; ignored",
        )
    if held.content_hash == digest and env.updated_at == held.updated_at:
        return IngestResult(source_id=env.source_id, outcome="unchanged", golden_id=golden_id)
    return None


def _receive(system: System, spec: DomainSpec, env: Envelope, batch: _Batch) -> IngestResult:
    digest = content_hash(env.attributes, env.deleted)
    sr = batch.records.get(env.source_id)
    if sr is None:
        sr = SourceRecord.objects.select_for_update().get(system=system, domain=spec.name, source_id=env.source_id)
        batch.records[env.source_id] = sr
    if sr.content_hash:  # a version is held (not a row this batch has just inserted)
        result = version_held(env, digest, sr)
        if result is not None:
            return result
        if sr.content_hash == digest:
            # The same content, confirmed at a later time: it is now the most recent for recency.
            outcome = "unchanged"
            sr.updated_at = env.updated_at
            SourceRecord.objects.filter(pk=sr.pk).update(updated_at=env.updated_at)
            if sr.is_live and sr.golden_id:
                _, changed = golden_record_recompute(
                    domain=spec.name, golden_id=sr.golden_id, origin_system=sr.system_id
                )
                outcome = "updated" if changed else "unchanged"
            return IngestResult(
                source_id=env.source_id, outcome=outcome, golden_id=str(sr.golden_id) if sr.golden_id else None
            )
    sr.attributes = env.attributes
    sr.updated_at = env.updated_at
    sr.deleted = env.deleted
    sr.content_hash = digest
    return source_record_process(sr, spec=spec)


def _batch_open(system: System, spec: DomainSpec, envelopes: list[Envelope]) -> _Batch:
    """Insert the source records this batch sees for the first time (placeholders, filled as each is processed).

    Inserting them all up front, skipping keys that exist, makes concurrent deliveries of the same new record
    safe: the second waits for the first and then finds it (no unique-key error), and it costs one statement.
    """
    ids = list(dict.fromkeys(env.source_id for env in envelopes))
    rows = SourceRecord.objects.filter(system=system, domain=spec.name)
    known = set(rows.filter(source_id__in=ids).values_list("source_id", flat=True))
    first_seen = {}
    for env in envelopes:
        if env.source_id not in known:
            first_seen.setdefault(env.source_id, env)
    batch = _Batch(system=system.code, domain=spec.name, xrefs={}, waiting=set())
    if first_seen:
        SourceRecord.objects.bulk_create(
            [
                SourceRecord(
                    system=system,
                    domain=spec.name,
                    source_id=sid,
                    attributes={},
                    updated_at=env.updated_at,
                    content_hash="",
                    status=SourceStatus.INVALID,
                )
                for sid, env in first_seen.items()
            ],
            ignore_conflicts=True,
        )
        for sr in rows.select_for_update().filter(source_id__in=list(first_seen)):
            if not sr.content_hash:  # ours: nothing is attached to it yet
                sr._open_kinds, sr._pending, sr._keys = set(), {}, set()
                batch.xrefs[sr.source_id] = None
            batch.records[sr.source_id] = sr
        for xref in CrossReference.objects.filter(
            system=system, domain=spec.name, source_id__in=[sid for sid in first_seen if sid in batch.xrefs]
        ):
            batch.xrefs[xref.source_id] = xref  # a push made this xref before the record ever came in
    batch.waiting = set(
        PendingReference.objects.filter(
            target_system=system, target_domain=spec.name, target_source_id__in=ids
        ).values_list("target_source_id", flat=True)
    )
    return batch


def source_records_ingest(*, system: System | str, domain: str, envelopes: list[Envelope]) -> list[IngestResult]:
    """Ingest a batch of parsed envelopes in one transaction, with a result per record.

    Records are processed in order; an unexpected error rolls the whole batch back (nothing half-written).
    Ownership rules and systems are read once per batch.
    """
    spec = get_domain(domain)
    if isinstance(system, str):
        system = System.objects.get(code=system)
    results: list[IngestResult] = []
    with transaction.atomic(), rules_cached():
        match_lock(spec.name)
        for start in range(0, len(envelopes), _CHUNK):
            chunk = envelopes[start : start + _CHUNK]
            batch = _batch_open(system, spec, chunk)
            token = _batch.set(batch)
            try:
                for env in chunk:
                    results.append(_receive(system, spec, env, batch))
            finally:
                _batch.reset(token)
    return results


_CHUNK = 500
