"""The outbox relay: claim deliveries, push golden records, settle each delivery.

Claiming is `SELECT … FOR UPDATE SKIP LOCKED` plus a lease (a worker that dies loses its claim when the
lease runs out). Only the oldest open delivery of a (system, golden record) is claimable, which keeps each
record's changes in order per system. A push sends the record's current state (fields the target's
mapping covers, minus those whose value came from the target itself), so it also settles that record's
later pending deliveries up to the version sent. Success stores the system's id as a CrossReference in the
same transaction that marks the delivery done. Transient errors retry with exponential backoff and jitter
(429 honours Retry-After, pauses the system and does not count as an attempt); permanent errors and
exhausted retries become dead letters in the stewards' exception queue.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from canonical.audit import Channel, audit_context
from canonical.domains import get_domain
from canonical.models import CrossReference, ExceptionStatus, GoldenStatus
from canonical.services import exceptions as exc_service
from canonical.services.golden import golden_values
from canonical.services.ingest import match_lock
from connectors.base import PushItem, PushResult, TransportError, backoff_delay
from connectors.models import Connection, DeadLetter, Delivery, DeliveryStatus, SyncRun, SyncRunStatus
from connectors.registry import connector_class, connector_for
from connectors.webhooks.mapping import cloudevent

from . import settings as knobs
from .leases import LeaseKeeper

logger = logging.getLogger(__name__)
OPEN = (DeliveryStatus.PENDING, DeliveryStatus.LEASED)


@dataclass
class RelayStats:
    claimed: int = 0
    delivered: int = 0
    coalesced: int = 0
    retried: int = 0
    dead: int = 0
    lost: int = 0
    errors: list[str] = field(default_factory=list)
    unexpected: str = ""  # the error that stopped this system's push (a bug or a database error), if one did

    def add(self, other: RelayStats) -> None:
        for name in ("claimed", "delivered", "coalesced", "retried", "dead", "lost"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors[: max(0, 50 - len(self.errors))])
        self.unexpected = self.unexpected or other.unexpected

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("claimed", "delivered", "coalesced", "retried", "dead", "lost")}


def _pause_key(system: str) -> str:
    return f"connectors:pause:{system}"


def system_paused_until(system: str) -> float:
    return float(cache.get(_pause_key(system)) or 0)


def system_pause(system: str, seconds: float) -> None:
    until = time.time() + seconds
    if until > system_paused_until(system):
        cache.set(_pause_key(system), until, timeout=max(1, int(seconds) + 1))


def _coalesces(kind: str) -> bool:
    try:
        return connector_class(kind).coalesce
    except Exception:  # noqa: BLE001 - an unknown kind: its pushes fail on their own; treat it as coalescing
        return True


def deliveries_claim(*, limit: int, token: str, system: str | None = None, domain: str | None = None) -> list[int]:
    """Lease up to `limit` claimable deliveries to `token`; returns their ids (oldest first)."""
    now = timezone.now()
    # A record's changes go to a system in order: one waits for the earlier ones still open.
    earlier_open = Delivery.objects.filter(
        system_id=OuterRef("system_id"), golden_id=OuterRef("golden_id"), id__lt=OuterRef("id"), status__in=OPEN
    )
    qs = Delivery.objects.filter(
        Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        | Q(status=DeliveryStatus.LEASED, lease_until__lt=now)
    ).filter(~Exists(earlier_open))
    connections = list(Connection.objects.values_list("system_id", "kind", "enabled"))
    # For a system that gets each event itself (a webhook subscriber: no coalescing), a dead letter no steward has
    # handled holds the record's later events back too, until it is replayed (then it goes first) or its exception
    # resolved or ignored: otherwise the subscriber got version 2, then on replay version 1 last. (Dead letters are
    # few: a separate test on their table, only when such a system is connected.)
    ordered = [code for code, kind, _ in connections if not _coalesces(kind)]
    if ordered:
        held_back = DeadLetter.objects.filter(
            system_id=OuterRef("system_id"),
            golden_id=OuterRef("golden_id"),
            delivery_id__lt=OuterRef("id"),
            system_id__in=ordered,
            replayed_at__isnull=True,
            exception__status=ExceptionStatus.OPEN,
        )
        qs = qs.filter(~Exists(held_back))
    # a system whose connection is missing or disabled is not claimed: its changes wait, using no attempt, until
    # it is enabled (claiming them put each back every run, a second later, and recorded a failed run)
    enabled = [code for code, _, on in connections if on]
    qs = qs.filter(system_id__in=enabled)
    paused = [code for code, _, _ in connections if system_paused_until(code) > time.time()]
    if paused:
        qs = qs.exclude(system_id__in=paused)
    if system:
        qs = qs.filter(system_id=system)
    if domain:
        qs = qs.filter(domain=domain)
    with transaction.atomic():
        ids = list(
            qs.select_for_update(skip_locked=True, of=("self",)).order_by("id").values_list("id", flat=True)[:limit]
        )
        if ids:
            Delivery.objects.filter(id__in=ids).update(
                status=DeliveryStatus.LEASED,
                lease_until=now + dt.timedelta(seconds=knobs.lease_seconds()),
                lease_token=token,
                attempts=F("attempts") + 1,
            )
    return ids


def push_item(delivery: Delivery, *, covers: set[str], personal: bool = False) -> PushItem:
    """The golden record's current state for one target: covered fields, none that came from the target."""
    spec = get_domain(delivery.domain)
    record = spec.model.objects.get(pk=delivery.golden_id)
    values = golden_values(record)
    provenance = record.provenance or {}
    sendable = {
        name: value
        for name, value in values.items()
        if name in covers and (provenance.get(name) or {}).get("system") != delivery.system_id
    }
    refs: dict[str, str | None] = {}
    for f in spec.ref_fields:
        golden = sendable.get(f.name)
        if golden:
            refs[f.name] = (
                CrossReference.objects.filter(system_id=delivery.system_id, domain=f.ref_domain, golden_id=golden)
                .order_by("-source_record_id", "pk")
                .values_list("source_id", flat=True)
                .first()
            )
    status = record.status if record.status != GoldenStatus.MERGED else "merged"
    # this system's cross-references of the record, in one read: one with a source record means it came from there
    known = list(
        CrossReference.objects.filter(system_id=delivery.system_id, domain=delivery.domain, golden_id=record.pk)
        .order_by("source_record_id")
        .values_list("source_id", "source_record_id")
    )
    own = next((source_id for source_id, source_record in known if source_record is not None), None)
    return PushItem(
        delivery_id=delivery.pk,
        domain=delivery.domain,
        golden_id=str(record.pk),
        version=record.version,
        status=status,
        values=sendable,
        refs=refs,
        event=cloudevent(delivery.event, personal=personal),
        remote_id=own,
        known=bool(known),
    )


def xref_store(*, system: str, domain: str, remote_id: str, golden_id: uuid.UUID) -> CrossReference:
    """Record that `system` knows the golden record as `remote_id` (history row via save()).

    Under the domain's match locks (canonical.services.ingest.match_lock, held until the caller's transaction
    ends): an ingest of the same system's records decides whether a new source id already has a cross-reference
    a push made, then writes its own; without the locks, a push settled between the two made that write fail on
    the cross-reference's unique key (a pull's page, or a whole bulk batch, rolled back). With them, the push
    waits for the ingest, finds the ingest's cross-reference and leaves it; or the ingest waits for the push and
    links the record through the push's cross-reference."""
    match_lock(domain)
    xref = CrossReference.objects.filter(system_id=system, domain=domain, source_id=remote_id).first()
    if xref is None:
        try:
            with transaction.atomic():
                xref = CrossReference(system_id=system, domain=domain, source_id=remote_id, golden_id=golden_id)
                xref.save()
                return xref
        except IntegrityError:
            xref = CrossReference.objects.get(system_id=system, domain=domain, source_id=remote_id)
    if xref.golden_id != golden_id and xref.source_record_id is None:
        xref.golden_id = golden_id
        xref.save()
    return xref


def _settle_ok(d: Delivery, item: PushItem, result: PushResult, token: str, coalesce: bool, stats: RelayStats) -> None:
    now = timezone.now()
    with transaction.atomic():
        if result.remote_id:
            match_lock(d.domain)  # xref_store's, taken before the delivery's row lock (match locks come first)
        done = Delivery.objects.filter(pk=d.pk, status=DeliveryStatus.LEASED, lease_token=token).update(
            status=DeliveryStatus.DONE, delivered_at=now, remote_id=result.remote_id or "", last_error=""
        )
        if not done:
            stats.lost += 1  # the lease ran out and another worker took it: its push is the one recorded
            return
        stats.delivered += 1
        if coalesce:
            stats.coalesced += Delivery.objects.filter(
                system_id=d.system_id,
                golden_id=d.golden_id,
                status=DeliveryStatus.PENDING,
                id__gt=d.pk,
                version__lte=item.version,
            ).update(status=DeliveryStatus.DONE, coalesced=True, delivered_at=now, remote_id=result.remote_id or "")
        if result.remote_id:
            xref_store(system=d.system_id, domain=d.domain, remote_id=result.remote_id, golden_id=d.golden_id)
            from .deals import deal_on_push

            deal_on_push(system=d.system_id, domain=d.domain, golden_id=d.golden_id, remote_id=result.remote_id)


def _dead(d: Delivery, error: TransportError, token: str, stats: RelayStats) -> None:
    with transaction.atomic():
        moved = Delivery.objects.filter(pk=d.pk, status=DeliveryStatus.LEASED, lease_token=token).update(
            status=DeliveryStatus.DEAD, last_error=str(error)[:2000], lease_token=""
        )
        if not moved:
            stats.lost += 1
            return
        stats.dead += 1
        why = "permanent error" if error.permanent else f"gave up after {d.attempts} attempts"
        letter = DeadLetter.objects.create(delivery=d, system_id=d.system_id, domain=d.domain, golden_id=d.golden_id,
                                           error=str(error)[:2000], permanent=error.permanent,
                                           attempts=d.attempts)  # fmt: skip
        letter.exception = exc_service.exception_raise(
            kind="dead_letter",
            message=f"push of {d.domain} {d.golden_id} to {d.system_id} failed ({why}): {str(error)[:300]}. "
            "Fix the cause in the target system, then replay the dead letter.",
            golden_id=d.golden_id,
            domain=d.domain,
            system=d.system_id,
            detail={
                "dead_letter": letter.pk,
                "delivery": d.pk,
                "event": d.event_id,
                "status": error.status,
                "permanent": error.permanent,
                "attempts": d.attempts,
            },  # fmt: skip
        )
        letter.save(update_fields=["exception"])


def _retry(d: Delivery, error: TransportError, token: str, stats: RelayStats, *, not_tried: bool = False) -> None:
    """Back to pending, later. `not_tried`: nothing was sent (the connection is disabled or missing), so, as for a
    429, the claim does not use up an attempt: a change waiting out a disabled connection is not a dead letter at
    the first failure after it is enabled again."""
    rate_limited = error.status == 429
    if rate_limited:
        system_pause(d.system_id, error.retry_after or knobs.retry_base())
    delay = backoff_delay(max(1, d.attempts), base=knobs.retry_base(), cap=knobs.retry_cap(),
                          retry_after=error.retry_after)  # fmt: skip
    updates = {
        "status": DeliveryStatus.PENDING,
        "next_attempt_at": timezone.now() + dt.timedelta(seconds=delay),
        "last_error": str(error)[:2000],
        "lease_token": "",
    }
    if rate_limited or not_tried:  # the system said "later", or was not asked: it does not use up an attempt
        updates["attempts"] = F("attempts") - 1
    moved = Delivery.objects.filter(pk=d.pk, status=DeliveryStatus.LEASED, lease_token=token).update(**updates)
    if moved:
        stats.retried += 1
    else:
        stats.lost += 1


def relay_batch(*, ids: list[int], token: str, out: dict[str, RelayStats] | None = None) -> dict[str, RelayStats]:
    """Push the claimed deliveries, grouped by system; settle each one. Returns stats per system (in `out` when
    given, so they survive an unexpected error, which is noted on its system's stats and raised)."""
    deliveries = list(Delivery.objects.filter(id__in=ids, lease_token=token).select_related("event").order_by("id"))
    by_system: dict[str, list[Delivery]] = {}
    for d in deliveries:
        by_system.setdefault(d.system_id, []).append(d)
    out = {} if out is None else out
    for system, group in by_system.items():
        stats = out.setdefault(system, RelayStats(claimed=len(group)))
        try:
            _push_group(system, group, token, stats)
        except BaseException as exc:  # a bug, a database error, an interrupt: its leases run out, the relay retries
            stats.unexpected = f"unexpected error: {exc!r}"[:500]
            raise
    return out


class _LeaseHold:
    """Holds the leases of one push's deliveries one request ahead: before each request (`connector.held`) every
    delivery of the batch still leased to `token` is held for the claim's lease plus one HTTP timeout from now, and
    the request's items still held are sent.

    - A lease that ran out while a slow push was in flight let another worker take the record and push its newer
      state, and the slow, older push then landed last, leaving the system stale with every delivery done: so the
      batch is held before each request, those pushed and not yet settled included.
    - Held for the whole batch's worst case at once (a timeout per item: 60 + 50 x 10 s by default), a worker
      killed mid-batch kept its deliveries from every other worker for up to ten minutes; now for one lease and
      one request's timeout.
    - The leases are only written again once half the claim's lease is used up (a query or two every ~30 s of
      pushing, not two a request); until then the batch is still certainly ours."""

    def __init__(self, ids: list[int], token: str) -> None:
        self.ids, self.token = ids, token
        self.held: set[int] = set()
        self.until: dt.datetime | None = None

    def __call__(self, items: list[PushItem]) -> list[PushItem]:
        lease = knobs.lease_seconds()
        if self.until is None or (self.until - timezone.now()).total_seconds() < _http_timeout() + lease / 2:
            self.renew()
        return [item for item in items if item.delivery_id in self.held]

    def renew(self) -> None:
        """Write the batch's leases again now: lease + one HTTP timeout from the moment the rows are locked (a wait
        for the lock, as on SQLite, does not eat into the request's time). Called by the connector's requests and
        by the push's `LeaseKeeper` thread."""
        with transaction.atomic():
            held = Delivery.objects.select_for_update().filter(
                pk__in=self.ids, status=DeliveryStatus.LEASED, lease_token=self.token
            )
            self.held = set(held.values_list("pk", flat=True))
            until = timezone.now() + dt.timedelta(seconds=knobs.lease_seconds() + _http_timeout())
            Delivery.objects.filter(pk__in=self.held).update(lease_until=until)
        self.until = until


def _http_timeout() -> float:
    return float(getattr(settings, "MDM_HTTP_TIMEOUT", 10))


def _push_group(system: str, group: list[Delivery], token: str, stats: RelayStats) -> None:
    conn = Connection.objects.filter(system_id=system).first()
    if conn is None or not conn.enabled:
        for d in group:
            _retry(
                d, TransportError(f"{system} has no enabled connection", permanent=False), token, stats, not_tried=True
            )
        return
    connector = connector_for(conn)
    hold = connector.request_hold = _LeaseHold([d.pk for d in group], token)
    # held from a thread of its own too, every third of the lease, until every delivery is settled: settling takes
    # the match lock, which a pull's page can hold for longer than the lease, and a batch pushed but not yet settled
    # was then claimed and pushed again by another worker
    # at most as long as the batch could take with two requests a record each up to its timeout (the bound the
    # leases were once written for up front)
    longest = knobs.lease_seconds() + 2 * len(group) * _http_timeout()
    with LeaseKeeper(hold.renew, every=lambda: knobs.lease_seconds() / 3, what=f"a push to {system}",
                     max_seconds=longest):  # fmt: skip
        _push_and_settle(system, group, token, stats, conn, connector, hold)


def _push_and_settle(
    system: str, group: list[Delivery], token: str, stats: RelayStats, conn: Connection, connector, hold: _LeaseHold
) -> None:
    try:
        items: dict[int, PushItem] = {}
        for d in group:
            try:
                items[d.pk] = push_item(d, covers=connector.covers(d.domain),
                                        personal=bool(conn.options.get("personal")))  # fmt: skip
            except Exception as exc:  # noqa: BLE001  (a record that cannot be read is a dead letter, not a crash)
                _dead(d, TransportError(f"cannot build the push: {exc}", permanent=True), token, stats)
        # held once for the push as a whole too (a connector that never asks `held` still gets one request's hold
        # and sends only what is still ours), then before each request by the connector
        sendable, lost = connector.held(list(items.values())) if items else ([], [])
        results = [*(connector.push(sendable) if sendable else []), *lost]
        if items:
            hold.renew()  # pushed and not yet settled: held afresh while they are settled
    except TransportError as exc:
        results = [PushResult(delivery_id=pk, error=exc) for pk in items]
    finally:
        connector.close()
    with audit_context(actor=f"connector:{system}", channel=Channel.CONNECTOR, reason=f"push to {system}"):
        seen = set()
        for result in results:
            d = next(x for x in group if x.pk == result.delivery_id)
            seen.add(d.pk)
            logger.info("delivery %s", "pushed" if result.ok else "failed", extra={
                "event": "delivery.pushed" if result.ok else "delivery.failed", "correlation_id": d.event.request_id,
                "system": d.system_id, "domain": d.domain, "golden_id": str(d.golden_id), "version": d.version,
                "delivery": d.pk, "remote_id": result.remote_id or "", "error": str(result.error or "")[:300]})  # fmt: skip
            if result.ok:
                _settle_ok(d, items[d.pk], result, token, connector.coalesce, stats)
                continue
            err = result.error
            stats.errors.append(f"{d.domain} {d.golden_id}: {err}"[:500])
            if err.permanent or (err.status != 429 and d.attempts >= knobs.max_attempts()):
                _dead(d, err, token, stats)
            else:
                _retry(d, err, token, stats)
        for pk in set(items) - seen:
            d = next(x for x in group if x.pk == pk)
            _retry(d, TransportError("the connector gave no result for this record", permanent=False), token, stats)


def relay_run(
    *, system: str | None = None, domain: str | None = None, max_seconds: float | None = None,
    batch_size: int | None = None, trigger: str = "beat", progress=None,
) -> dict[str, RelayStats]:  # fmt: skip
    """Claim and push until nothing is claimable or the time budget is spent; record a SyncRun per system."""
    token = uuid.uuid4().hex
    max_seconds = knobs.relay_max_seconds() if max_seconds is None else max_seconds
    batch_size = batch_size or knobs.relay_batch_size()
    deadline = time.monotonic() + max_seconds
    t0 = time.monotonic()
    totals: dict[str, RelayStats] = {}
    try:
        while time.monotonic() < deadline:
            ids = deliveries_claim(limit=batch_size, token=token, system=system, domain=domain)
            if not ids:
                break
            batch: dict[str, RelayStats] = {}
            try:
                relay_batch(ids=ids, token=token, out=batch)
            finally:  # what an unexpected error interrupted is recorded too (as failed), then the error goes on
                for code, stats in batch.items():
                    totals.setdefault(code, RelayStats()).add(stats)
            if progress is not None:
                progress(len(ids))
    finally:
        finished = timezone.now()
        for code, stats in totals.items():
            SyncRun.objects.create(
                system_id=code, domain=domain or "", direction="push", trigger=trigger,
                status=SyncRunStatus.FAILED if stats.dead or stats.unexpected or relay_none_reached(stats) else SyncRunStatus.SUCCEEDED,
                finished_at=finished, duration_ms=int((time.monotonic() - t0) * 1000), counts=stats.as_dict(),
                errors=(([stats.unexpected] if stats.unexpected else []) + stats.errors)[:50],
            )  # fmt: skip
    return totals


def relay_none_reached(stats: RelayStats) -> bool:
    """Every change tried failed (the system is down or refuses the hub): the run failed, though all are retried."""
    return bool(stats.claimed and stats.retried and not stats.delivered and not stats.coalesced)


def deliveries_pending(*, system: str | None = None, domain: str | None = None) -> int:
    qs = Delivery.objects.filter(status__in=OPEN)
    if system:
        qs = qs.filter(system_id=system)
    if domain:
        qs = qs.filter(domain=domain)
    return qs.count()
