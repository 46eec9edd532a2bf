"""Reconciliation: compare a system's snapshot with the hub, classify every difference, heal or raise it.

For each domain the system sends (its pull domains) the snapshot is streamed page by page — never held
whole — and each record is compared with the hub's copy of it (its source record and cross-reference):

- missing in the hub: live in the system, never received (or deleted in the hub, or its cross-reference
  is gone) → re-ingested through the pipeline (or re-processed to restore the cross-reference);
- missing in the system: the hub holds it live but the system deleted it → the deletion is ingested; the
  system no longer has it at all (neither live nor deleted) → raised for a steward;
- field drift: the system's record differs from the version the hub holds → re-ingested (the pipeline applies
  ownership: an owner's value wins, a non-owner's is kept on its source record); a field the system
  receives from the hub (its connector pushes it, another system owns it) differs from the golden value →
  re-pushed through the outbox relay;
- orphan cross-reference: the hub's cross-reference leads to another golden record than its source record
  (or to none) → re-processed, or raised when there is nothing to re-process;
- duplicate in the system: several live records of the system belong to the same golden record → raised.

For the domains the system only receives, golden records that were never delivered to it are re-pushed.
Every change runs inside `audit_context(actor="job:reconcile", channel=job)` with a reason per kind. A
reconciliation exception whose cause is gone at the next complete run is resolved by that run.
"""

from __future__ import annotations

import logging
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connection
from django.db.models import Count, Exists, Max, OuterRef
from django.utils import timezone

from canonical.audit import Channel, audit_context, audit_reason
from canonical.domains import DOMAIN_ORDER, DOMAINS, DomainSpec, get_domain
from canonical.models import (
    CrossReference,
    DataException,
    ExceptionStatus,
    GoldenStatus,
    SourceRecord,
    SourceStatus,
)
from canonical.services import exceptions as exc_service
from canonical.services.golden import golden_survivor_map, golden_values
from canonical.services.ingest import Envelope, content_hash, source_records_ingest
from canonical.services.ownership import ownership_map
from canonical.validation import validate_attributes
from connectors.base import Connector, TransportError
from connectors.models import Connection, Delivery
from connectors.models.reconciliation import (
    DifferenceAction,
    DifferenceKind,
    ReconciliationItem,
    ReconciliationRun,
    ReconciliationSeen,
    ReconciliationStatus,
)
from connectors.registry import connector_class, connector_for
from connectors.services.connections import connection_missing_message

from .repush import delivery_requeue

logger = logging.getLogger(__name__)
ACTOR = "job:reconcile"
KIND = "reconciliation"
_ITEM_BATCH = 500


class ReconciliationError(ValueError):
    """Bad input to a reconciliation (unknown system, disabled connection, a domain the system lacks)."""


@dataclass
class _Diff:
    domain: str
    kind: str
    source_id: str = ""
    golden_id: uuid.UUID | str | None = None
    fields: dict = field(default_factory=dict)
    reason: str = ""
    action: str = ""
    outcome: str = ""
    exception_id: int | None = None


class _Recorder:
    """Writes the run's items in batches and keeps its counts (nothing grows with the snapshot's size)."""

    def __init__(self, run: ReconciliationRun):
        self.run = run
        self.buffer: list[_Diff] = []
        self.kinds: Counter[str] = Counter()
        self.actions: Counter[str] = Counter()

    def add(self, diff: _Diff) -> None:
        self.kinds[diff.kind] += 1
        self.actions[diff.action] += 1
        self.buffer.append(diff)
        logger.info(
            "reconciliation difference",
            extra={"event": "reconciliation.difference", "system": self.run.system_id, "domain": diff.domain,
                   "kind": diff.kind, "action": diff.action, "source_id": diff.source_id,
                   "golden_id": str(diff.golden_id or ""), "run": self.run.pk},
        )  # fmt: skip
        if len(self.buffer) >= _ITEM_BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        ReconciliationItem.objects.bulk_create(
            [
                ReconciliationItem(
                    run=self.run,
                    domain=d.domain,
                    kind=d.kind,
                    action=d.action,
                    source_id=d.source_id[:255],
                    golden_id=uuid.UUID(str(d.golden_id)) if d.golden_id else None,
                    fields=d.fields,
                    reason=d.reason[:255],
                    outcome=d.outcome[:255],
                    exception_id=d.exception_id,
                )  # fmt: skip
                for d in self.buffer
            ]
        )
        self.buffer = []


@dataclass
class _Scope:
    """What one domain's reconciliation needs to know, read once."""

    run: ReconciliationRun
    conn: Connection
    spec: DomainSpec
    rec: _Recorder
    received: set[str]  # fields the system gets from the hub (its connector pushes them; another system owns them)

    @property
    def system(self) -> str:
        return self.conn.system_id

    @property
    def domain(self) -> str:
        return self.spec.name


# --- entry point ------------------------------------------------------------------------------------------


def reconciliation_domains(*, connection: Connection) -> tuple[list[str], list[str]]:
    """(domains the system sends — their snapshot is compared, domains it only receives)."""
    from connectors.services.pull import pull_domains

    cls = connector_class(connection.kind)
    sent = pull_domains(connection) if cls.pull_domains else []
    subscribed = set(connection.system.subscribed_domains or [])
    received = [d for d in DOMAIN_ORDER if d in cls.push_domains and d in subscribed and d not in sent]
    return sent, received


def reconciliation_run(
    *, system: str, domain: str | None = None, trigger: str = "beat", progress: Callable[[int], Any] | None = None
) -> ReconciliationRun:
    """Reconcile one system (every domain it sends or receives, or only `domain`) and store the run."""
    conn = Connection.objects.select_related("system").filter(system_id=system).first()
    if conn is None:
        raise ReconciliationError(connection_missing_message(system=system))
    if not conn.enabled:
        raise ReconciliationError(f"the connection of '{system}' is disabled; enable it in the admin first")
    if domain is not None and domain not in DOMAINS:
        raise ReconciliationError(f"unknown domain '{domain}'; expected one of {', '.join(DOMAINS)}")
    sent, received = reconciliation_domains(connection=conn)
    if domain is not None:
        if domain not in sent and domain not in received:
            raise ReconciliationError(
                f"{system} neither sends nor receives {domain}; its domains: {', '.join(sent + received) or 'none'}"
            )
        sent, received = [d for d in sent if d == domain], [d for d in received if d == domain]
    domains = [d for d in DOMAIN_ORDER if d in sent or d in received]
    if not _run_lock_take(system):
        running = ReconciliationRun.objects.filter(system_id=system, status=ReconciliationStatus.RUNNING).first()
        since = f" (run {running.pk}, started {running.started_at:%Y-%m-%d %H:%M:%S} UTC)" if running else ""
        raise ReconciliationError(
            f"a reconciliation of '{system}' is already running{since}; wait for it to finish "
            "(GET /api/v1/reconciliation-runs/ shows it), then run this one again"
        )
    try:
        return _run(conn, system, domains, sent, trigger, progress)
    finally:
        _run_lock_release(system)


# One reconciliation of a system at a time (the nightly job and an operator's command, or two commands): two at once
# raised the same difference twice, and one's closing pass could resolve what the other had just raised. A session
# advisory lock on PostgreSQL, let go when the run ends or its connection does (a killed worker); elsewhere (SQLite,
# the demo: one process) nothing.
_RUN_LOCK_CLASS = 0x52454331  # 'REC1'


def _run_lock_id(system: str) -> int:
    return zlib.crc32(system.encode()) - 2**31  # a signed 32-bit key


def _run_lock_take(system: str) -> bool:
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s, %s)", [_RUN_LOCK_CLASS, _run_lock_id(system)])
        return bool(cur.fetchone()[0])


def _run_lock_release(system: str) -> None:
    if connection.vendor != "postgresql" or connection.connection is None:
        return  # no connection left: the server let the lock go with it
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_unlock(%s, %s)", [_RUN_LOCK_CLASS, _run_lock_id(system)])


def _run(
    conn: Connection, system: str, domains: list[str], sent: list[str], trigger: str, progress
) -> ReconciliationRun:
    t0 = time.monotonic()
    with audit_context(actor=ACTOR, channel=Channel.JOB, reason=f"reconciliation of {system}") as ctx:
        run = ReconciliationRun.objects.create(system_id=system, domains=domains, trigger=trigger,
                                               request_id=ctx.request_id)  # fmt: skip
        logger.info("reconciliation started", extra={"event": "reconciliation.started", "system": system,
                                                     "domains": domains, "run": run.pk})  # fmt: skip
        rec = _Recorder(run)
        errors: list[str] = []
        connector = None
        try:
            connector = connector_for(conn) if sent else None
            for d in domains:
                scope = _Scope(run=run, conn=conn, spec=get_domain(d), rec=rec, received=_received_fields(conn, d))
                complete = True
                if d in sent:
                    try:
                        _snapshot_pass(scope, connector, progress)
                    except TransportError as exc:
                        complete = False
                        errors.append(f"{d}: {str(exc)[:1000]}")
                        logger.warning("reconciliation snapshot failed", extra={
                            "event": "reconciliation.failed", "system": system, "domain": d, "error": str(exc)[:500]})  # fmt: skip
                if complete:
                    if d in sent:
                        _absent_pass(scope)
                        _duplicate_pass(scope)
                    else:
                        _never_delivered_pass(scope)
                    rec.flush()
                    _close_resolved(scope)
        except BaseException as exc:  # a bug, a database error, an interrupt: the run ends failed, the error goes on
            errors.append(f"unexpected error: {exc!r}"[:1000])
            _finish(run, rec, errors, t0, failed=True)
            raise
        finally:
            if connector is not None:
                connector.close()
            ReconciliationSeen.objects.filter(run=run).delete()
        _finish(run, rec, errors, t0, failed=bool(errors))
    logger.info("reconciliation finished", extra={"event": "reconciliation.finished", "system": system, "run": run.pk,
                                                  "status": run.status, "records": run.records, "counts": run.counts,
                                                  "actions": run.actions, "correlation_id": run.request_id})  # fmt: skip
    return run


def _finish(run: ReconciliationRun, rec: _Recorder, errors: list[str], t0: float, *, failed: bool) -> None:
    """End the run: its last items written, its counts, its errors (the pages' rows that were not records,
    which the snapshot pass put on the run, then the run's own), its status. When the run failed, items that
    cannot be written are dropped rather than leave the run `running`."""
    if failed:
        try:
            rec.flush()
        except Exception:  # noqa: BLE001 - the error that failed the run is raised by the caller
            logger.exception("reconciliation items not written", extra={"run": run.pk})
            rec.buffer = []
    else:
        rec.flush()
    run.status = ReconciliationStatus.FAILED if failed else ReconciliationStatus.SUCCEEDED
    run.counts = dict(rec.kinds)
    run.actions = dict(rec.actions)
    run.errors = (list(run.errors or []) + errors)[:50]
    run.finished_at = timezone.now()
    run.duration_ms = int((time.monotonic() - t0) * 1000)
    run.save()


def _received_fields(conn: Connection, domain: str) -> set[str]:
    cls = connector_class(conn.kind)
    if domain not in cls.push_domains or domain not in (conn.system.subscribed_domains or []):
        return set()
    owners = ownership_map(domain)
    return {name for name in cls.covers(domain) if owners.get(name) != conn.system_id}


# --- the snapshot pass ------------------------------------------------------------------------------------


def _snapshot_pass(scope: _Scope, connector: Connector, progress) -> None:
    for page in connector.snapshot(domain=scope.domain):
        for error in page.errors[: max(0, 50 - len(scope.run.errors))]:  # rows that are not records at all
            scope.run.errors.append(f"{scope.domain}: {error}"[:500])
        envelopes = _unique(page.envelopes)
        if envelopes:
            _page_compare(scope, envelopes)
        scope.rec.flush()
        scope.run.records += len(page.envelopes)
        if progress is not None:
            progress(len(page.envelopes))


def _unique(envelopes: list[Envelope]) -> list[Envelope]:
    last: dict[str, Envelope] = {}
    for env in envelopes:
        held = last.get(env.source_id)
        if held is None or env.updated_at >= held.updated_at:
            last[env.source_id] = env
    return list(last.values())


def _page_compare(scope: _Scope, envelopes: list[Envelope]) -> None:
    system, domain = scope.system, scope.domain
    ids = [e.source_id for e in envelopes]
    ReconciliationSeen.objects.bulk_create(
        [ReconciliationSeen(run=scope.run, domain=domain, source_id=sid) for sid in ids]
    )
    held = {
        row["source_id"]: row
        for row in SourceRecord.objects.filter(system_id=system, domain=domain, source_id__in=ids).values(
            "pk", "source_id", "content_hash", "updated_at", "status", "golden_id", "processed_at"
        )
    }
    xrefs = {
        row["source_id"]: row
        for row in CrossReference.objects.filter(system_id=system, domain=domain, source_id__in=ids).values(
            "pk", "source_id", "golden_id", "source_record_id"
        )
    }
    ingest: dict[str, list[tuple[Envelope, _Diff]]] = {}
    reprocess: list[tuple[int, _Diff]] = []
    compare: list[tuple[Envelope, dict]] = []
    mismatched: list[tuple[Envelope, dict, dict]] = []
    for env in envelopes:
        sr, xref = held.get(env.source_id), xrefs.get(env.source_id)
        known = sr is not None and bool(sr["content_hash"])
        if env.deleted:
            if known and sr["status"] != SourceStatus.DELETED:
                diff = _Diff(domain, DifferenceKind.MISSING_IN_SYSTEM, env.source_id, sr["golden_id"],
                             reason="deleted in the system, live in the hub")  # fmt: skip
                ingest.setdefault("the system deleted it", []).append((env, diff))
            continue
        if not known:
            diff = _Diff(domain, DifferenceKind.MISSING_IN_HUB, env.source_id, reason="never received by the hub")
            ingest.setdefault("missing in the hub", []).append((env, diff))
            continue
        if sr["status"] == SourceStatus.DELETED:
            diff = _Diff(domain, DifferenceKind.MISSING_IN_HUB, env.source_id, sr["golden_id"],
                         reason="live in the system, deleted in the hub")  # fmt: skip
            ingest.setdefault("missing in the hub", []).append((env, diff))
            continue
        if content_hash(env.attributes, env.deleted) != sr["content_hash"]:
            diff = _Diff(domain, DifferenceKind.FIELD_DRIFT, env.source_id, sr["golden_id"],
                         reason="the system's record differs from the version the hub holds")  # fmt: skip
            ingest.setdefault("field drift", []).append((env, diff))
            continue
        if sr["status"] != SourceStatus.APPLIED or sr["golden_id"] is None:
            continue  # held, invalid or incomplete: already in an exception queue with its reason
        if xref is None:
            diff = _Diff(domain, DifferenceKind.MISSING_IN_HUB, env.source_id, sr["golden_id"],
                         reason="the hub's cross-reference is missing")  # fmt: skip
            reprocess.append((sr["pk"], diff))
            continue
        if xref["golden_id"] != sr["golden_id"]:
            mismatched.append((env, sr, xref))
            continue
        if scope.received:
            compare.append((env, sr))
    if mismatched:
        _orphans(scope, mismatched, reprocess, compare)
    compare.extend(_heal_by_ingest(scope, ingest, held))
    _heal_by_reprocess(scope, reprocess)
    if compare:
        _received_compare(scope, compare)


def _orphans(scope: _Scope, mismatched: list[tuple[Envelope, dict, dict]], reprocess: list, compare: list) -> None:
    ids = {row["golden_id"] for _, _, row in mismatched} | {sr["golden_id"] for _, sr, _ in mismatched}
    survivors = golden_survivor_map(scope.domain, ids)
    for env, sr, xref in mismatched:
        target = survivors.get(xref["golden_id"])
        if target is not None and target == survivors.get(sr["golden_id"]):
            if scope.received:  # a merge: both lead to the same survivor, nothing wrong with the xref
                compare.append((env, {**sr, "golden_id": target}))
            continue
        why = "leads to no golden record" if target is None else "leads to another golden record than its source"
        diff = _Diff(scope.domain, DifferenceKind.ORPHAN_XREF, env.source_id, sr["golden_id"],
                     fields={"xref_golden_id": {"hub": str(xref["golden_id"]), "system": str(sr["golden_id"])}},
                     reason=f"the cross-reference {why} record")  # fmt: skip
        reprocess.append((sr["pk"], diff))


def _heal_by_ingest(scope: _Scope, ingest: dict[str, list[tuple[Envelope, _Diff]]], held: dict) -> list:
    """Re-ingest through the pipeline; returns the re-ingested records whose received fields are to be compared."""
    recheck = []
    drifted = [held[env.source_id]["pk"] for env, d in ingest.get("field drift", [])]
    before = dict(SourceRecord.objects.filter(pk__in=drifted).values_list("pk", "attributes")) if drifted else {}
    for label, pairs in ingest.items():
        for env, diff in pairs:
            if diff.kind == DifferenceKind.FIELD_DRIFT:
                old = before.get(held[env.source_id]["pk"], {})
                diff.fields = {
                    name: {"hub": old.get(name), "system": env.attributes.get(name)}
                    for name in sorted(set(old) | set(env.attributes))
                    if old.get(name) != env.attributes.get(name)
                }
        with audit_reason(f"reconciliation of {scope.system} {scope.domain}: {label}, re-ingested"):
            results = source_records_ingest(system=scope.conn.system, domain=scope.domain,
                                            envelopes=[env for env, _ in pairs])  # fmt: skip
        for (env, diff), result in zip(pairs, results, strict=True):
            diff.golden_id = result.golden_id or diff.golden_id
            if result.outcome == "stale":
                sr_row = held.get(env.source_id)
                if sr_row is not None and sr_row["processed_at"] >= scope.run.started_at:
                    continue  # a pull brought a newer version while this run was going: nothing to report
                _raise(scope, diff, source_record_id=sr_row["pk"] if sr_row else None,
                       message=f"{scope.system} {scope.domain} {env.source_id}: the system shows an older version "
                       f"({env.updated_at.isoformat()}) than the hub holds; the hub keeps its version. Check whether "
                       f"{scope.system} lost an update (e.g. a restore) and correct it there.")  # fmt: skip
            elif result.outcome in ("exception", "held"):
                diff.action = DifferenceAction.RAISED
                diff.outcome = f"re-ingested; the pipeline raised it: {result.message or result.outcome}"
                diff.exception_id = _open_exception_of(scope, env.source_id)
            else:
                diff.action = DifferenceAction.HEALED
                diff.outcome = f"re-ingested: {result.outcome}"
                if scope.received and diff.kind == DifferenceKind.FIELD_DRIFT and result.golden_id:
                    recheck.append((env, {"golden_id": uuid.UUID(result.golden_id)}))
            scope.rec.add(diff)
    return recheck


def _heal_by_reprocess(scope: _Scope, reprocess: list[tuple[int, _Diff]]) -> None:
    from canonical.services.ingest import source_record_reprocess

    for pk, diff in reprocess:
        with audit_reason(f"reconciliation of {scope.system} {scope.domain}: {diff.reason}, re-processed"):
            result = source_record_reprocess(SourceRecord.objects.get(pk=pk))
        restored = CrossReference.objects.filter(
            system_id=scope.system, domain=scope.domain, source_id=diff.source_id, golden_id=result.golden_id
        ).exists()
        if restored:
            diff.action, diff.outcome = DifferenceAction.HEALED, f"re-processed: cross-reference → {result.golden_id}"
        else:
            _raise(scope, diff, source_record_id=pk,
                   message=f"{scope.system} {scope.domain} {diff.source_id}: {diff.reason}, and re-processing its "
                   "source record did not restore it. Check the record's cross-references in the admin.")  # fmt: skip
        scope.rec.add(diff)


# --- fields the system receives from the hub ----------------------------------------------------------------


def _received_compare(scope: _Scope, pairs: list[tuple[Envelope, dict]]) -> None:
    spec = scope.spec
    goldens = spec.model.objects.in_bulk([sr["golden_id"] for _, sr in pairs])
    checked: list[tuple[Envelope, Any, dict]] = []
    refs: dict[tuple[str, str], set[str]] = {}  # (ref domain, system) -> source ids to resolve
    for env, sr in pairs:
        record = goldens.get(sr["golden_id"])
        if record is None or record.status != GoldenStatus.ACTIVE:
            continue
        wanted = {k: v for k, v in env.attributes.items() if k in scope.received}
        if not wanted:
            continue
        values, errors = validate_attributes(spec, wanted, system=scope.system)
        values = {k: v for k, v in values.items() if k not in errors}
        for name, value in values.items():
            f = spec.get(name)
            if f.kind == "ref" and isinstance(value, dict) and "source_id" in value:
                refs.setdefault((f.ref_domain, value["system"]), set()).add(value["source_id"])
        checked.append((env, record, values))
    resolved: dict[tuple[str, str, str], str] = {}
    for (ref_domain, system), sids in refs.items():
        rows = CrossReference.objects.filter(system_id=system, domain=ref_domain, source_id__in=sids)
        pairs_ = list(rows.values_list("source_id", "golden_id"))
        survivors = golden_survivor_map(ref_domain, [g for _, g in pairs_])
        for sid, golden in pairs_:
            resolved[(ref_domain, system, sid)] = str(survivors.get(golden, golden))
    for env, record, values in checked:
        hub = golden_values(record)
        provenance = record.provenance or {}
        drift = {}
        for name, value in values.items():
            if (provenance.get(name) or {}).get("system") == scope.system:
                continue  # the golden value came from this system: the relay never sends it back
            f = spec.get(name)
            if f.kind == "ref":
                value = _ref_golden(value, f.ref_domain, resolved)
                if value is _UNRESOLVED:
                    continue
            if not _same(f.kind, value, hub.get(name)):
                drift[name] = {"hub": hub.get(name), "system": env.attributes.get(name)}
        if drift:
            diff = _Diff(scope.domain, DifferenceKind.FIELD_DRIFT, env.source_id, record.pk, fields=drift,
                         reason="a field the system receives from the hub differs from the golden value")  # fmt: skip
            _heal_by_push(scope, diff)


_UNRESOLVED = object()


def _ref_golden(value: Any, ref_domain: str, resolved: dict) -> Any:
    if value is None:
        return None
    if isinstance(value, dict) and "golden_id" in value:
        return str(value["golden_id"])
    if isinstance(value, dict) and "source_id" in value:
        return resolved.get((ref_domain, value["system"], value["source_id"]), _UNRESOLVED)
    return _UNRESOLVED


def _blank(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _same(kind: str, a: Any, b: Any) -> bool:
    if _blank(a) or _blank(b):
        return _blank(a) and _blank(b)
    if kind == "decimal":
        try:
            return Decimal(str(a)) == Decimal(str(b))
        except InvalidOperation:
            return str(a) == str(b)
    if kind == "list_str":
        return sorted(map(str, a)) == sorted(map(str, b))
    if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
        return a == b
    return str(a).strip() == str(b).strip()


def _heal_by_push(scope: _Scope, diff: _Diff) -> None:
    outcome = delivery_requeue(system=scope.system, domain=scope.domain, golden_id=diff.golden_id)
    if outcome.state == "queued":
        diff.action, diff.outcome = DifferenceAction.HEALED, f"re-push queued (delivery {outcome.delivery_id})"
    elif outcome.state == "in_flight":
        diff.action, diff.outcome = DifferenceAction.IN_FLIGHT, f"a push is on its way (delivery {outcome.delivery_id})"
    elif outcome.state == "dead":
        diff.action = DifferenceAction.OPEN
        diff.outcome = f"the last push is a dead letter (delivery {outcome.delivery_id}): replay it"
        diff.exception_id = (
            DataException.objects.filter(kind="dead_letter", status=ExceptionStatus.OPEN, golden_id=diff.golden_id,
                                         system_id=scope.system).values_list("pk", flat=True).first()
        )  # fmt: skip
    else:
        _raise(scope, diff, golden_id=diff.golden_id,
               message=f"{scope.system} {scope.domain} {diff.source_id or diff.golden_id}: {diff.reason}, and the hub "
               "has no outbox event to push it from. Re-save the golden record (e.g. a steward override) to push it.")  # fmt: skip
    scope.rec.add(diff)


# --- passes after the snapshot --------------------------------------------------------------------------------


def _absent_pass(scope: _Scope) -> None:
    """Records the hub holds live from the system that the snapshot did not contain at all (not even deleted)."""
    if connection.vendor == "postgresql":  # fresh statistics, or the planner takes the just-filled table as empty
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {ReconciliationSeen._meta.db_table}")
    seen = ReconciliationSeen.objects.filter(run=scope.run, domain=scope.domain, source_id=OuterRef("source_id"))
    absent = (
        SourceRecord.objects.filter(system_id=scope.system, domain=scope.domain, deleted=False)
        .exclude(status=SourceStatus.DELETED)
        .exclude(content_hash="")
        .filter(received_at__lt=scope.run.started_at)
        .filter(~Exists(seen))
        .values_list("pk", "source_id", "golden_id")
    )
    for pk, source_id, golden_id in absent.iterator(chunk_size=2000):
        diff = _Diff(scope.domain, DifferenceKind.MISSING_IN_SYSTEM, source_id, golden_id,
                     reason="live in the hub, absent from the system's snapshot")  # fmt: skip
        _raise(scope, diff, source_record_id=pk,
               message=f"{scope.system} {scope.domain} {source_id} is live in the hub but absent from {scope.system}'s "
               f"snapshot (neither live nor deleted there). If it was removed on purpose, send its deletion "
               f"(ingest it with deleted=true); otherwise restore it in {scope.system}.")  # fmt: skip
        scope.rec.add(diff)


def _duplicate_pass(scope: _Scope) -> None:
    """Several live records of the system in one golden record: the system holds duplicates."""
    live = SourceRecord.objects.filter(
        system_id=scope.system, domain=scope.domain, status=SourceStatus.APPLIED, deleted=False,
        golden_id__isnull=False,
    )  # fmt: skip
    groups = live.values("golden_id").annotate(n=Count("id")).filter(n__gt=1).values_list("golden_id", flat=True)
    for golden_id in groups.iterator(chunk_size=500):
        rows = list(live.filter(golden_id=golden_id).order_by("received_at", "pk").values_list("pk", "source_id"))
        ids = [sid for _, sid in rows]
        diff = _Diff(scope.domain, DifferenceKind.DUPLICATE_IN_SYSTEM, ids[-1], golden_id,
                     fields={"source_ids": {"hub": str(golden_id), "system": ids}},
                     reason=f"{len(ids)} records of {scope.system} are the same {scope.domain}")  # fmt: skip
        _raise(scope, diff, source_record_id=rows[-1][0],
               message=f"{scope.system} holds {len(ids)} records of the same {scope.domain} ({', '.join(ids[:10])}), "
               f"all in golden record {golden_id}. Merge or delete the duplicates in {scope.system}; the hub keeps "
               "them linked to one golden record meanwhile.")  # fmt: skip
        scope.rec.add(diff)


def _never_delivered_pass(scope: _Scope) -> None:
    """Active golden records of a domain the system receives that it never got (no push, no cross-reference)."""
    model = scope.spec.model
    xref = CrossReference.objects.filter(system_id=scope.system, domain=scope.domain, golden_id=OuterRef("pk"))
    delivery = Delivery.objects.filter(system_id=scope.system, golden_id=OuterRef("pk"))
    never = (
        model.objects.filter(status=GoldenStatus.ACTIVE, created_at__lt=scope.run.started_at)
        .filter(~Exists(xref))
        .filter(~Exists(delivery))
        .values_list("pk", flat=True)
    )
    with audit_reason(f"reconciliation of {scope.system} {scope.domain}: never delivered, re-pushed"):
        for golden_id in never.iterator(chunk_size=2000):
            diff = _Diff(scope.domain, DifferenceKind.MISSING_IN_SYSTEM, "", golden_id,
                         reason="never delivered to the system")  # fmt: skip
            _heal_by_push(scope, diff)


# --- exceptions ---------------------------------------------------------------------------------------------


def _raise(scope: _Scope, diff: _Diff, *, message: str, source_record_id: int | None = None, golden_id=None) -> None:
    """Open (or find the open) reconciliation exception for this difference; set the item's action."""
    detail = {"run": scope.run.pk, "kind": diff.kind, "source_id": diff.source_id, "reason": diff.reason}
    if diff.fields:
        detail["fields"] = diff.fields
    if source_record_id is not None:
        existing = DataException.objects.filter(kind=KIND, status=ExceptionStatus.OPEN,
                                                source_record_id=source_record_id).first()  # fmt: skip
    elif golden_id is not None:
        existing = DataException.objects.filter(kind=KIND, status=ExceptionStatus.OPEN, source_record=None,
                                                golden_id=golden_id, system_id=scope.system).first()  # fmt: skip
    else:
        existing = DataException.objects.filter(kind=KIND, status=ExceptionStatus.OPEN, source_record=None,
                                                system_id=scope.system, domain=scope.domain,
                                                detail__source_id=diff.source_id).first()  # fmt: skip
    if existing is not None and existing.detail.get("kind") == diff.kind:
        diff.action, diff.exception_id = DifferenceAction.OPEN, existing.pk
        diff.outcome = f"already waiting for a steward (exception {existing.pk})"
        return
    with audit_reason(f"reconciliation of {scope.system} {scope.domain}: {diff.kind.replace('_', ' ')}"):
        if existing is not None:  # the same record, a different difference now: refresh it
            existing.message, existing.detail = message, detail
            existing.save()
            exc = existing
        else:
            sr = SourceRecord.objects.get(pk=source_record_id) if source_record_id is not None else None
            exc = exc_service.exception_raise(kind=KIND, message=message, source_record=sr, golden_id=diff.golden_id
                                              if diff.golden_id else None, detail=detail, domain=scope.domain,
                                              system=scope.system)  # fmt: skip
    diff.action, diff.exception_id = DifferenceAction.RAISED, exc.pk
    diff.outcome = f"raised for a steward (exception {exc.pk})"


def _open_exception_of(scope: _Scope, source_id: str) -> int | None:
    return (
        DataException.objects.filter(status=ExceptionStatus.OPEN, source_record__system_id=scope.system,
                                     source_record__domain=scope.domain, source_record__source_id=source_id)
        .order_by("-created_at").values_list("pk", flat=True).first()
    )  # fmt: skip


def _close_resolved(scope: _Scope) -> int:
    """Resolve this system's open reconciliation exceptions of the domain that this run no longer found."""
    found = ReconciliationItem.objects.filter(run=scope.run, domain=scope.domain, exception__isnull=False).values(
        "exception_id"
    )
    stale = DataException.objects.filter(kind=KIND, status=ExceptionStatus.OPEN, system_id=scope.system,
                                         domain=scope.domain).exclude(pk__in=found)  # fmt: skip
    closed = 0
    with audit_reason(f"reconciliation of {scope.system} {scope.domain}: difference gone"):
        for exc in stale:
            exc.status = ExceptionStatus.RESOLVED
            exc.resolution_note = f"no longer found by reconciliation run {scope.run.pk}"
            exc.resolved_at = timezone.now()
            exc.save()
            closed += 1
    return closed


# --- reads ----------------------------------------------------------------------------------------------------


def reconciliation_last_runs() -> dict[str, ReconciliationRun]:
    """The latest finished run of each system."""
    last = (
        ReconciliationRun.objects.exclude(status=ReconciliationStatus.RUNNING)
        .values("system_id")
        .annotate(last=Max("id"))
        .values_list("last", flat=True)
    )
    return {run.system_id: run for run in ReconciliationRun.objects.filter(pk__in=list(last))}


def reconciliation_all(*, trigger: str = "beat") -> list[ReconciliationRun]:
    """Reconcile every enabled connection (the nightly beat job); one system's failure does not stop the rest."""
    runs = []
    for code in Connection.objects.filter(enabled=True).values_list("system_id", flat=True):
        try:
            runs.append(reconciliation_run(system=code, trigger=trigger))
        except ReconciliationError as exc:
            logger.warning("reconciliation skipped", extra={"event": "reconciliation.skipped", "system": code,
                                                            "error": str(exc)})  # fmt: skip
        except Exception:
            logger.exception("reconciliation failed", extra={"event": "reconciliation.failed", "system": code})
    return runs
