"""Inbound pulls: changes since the cursor, ingested page by page through the governed pipeline.

Each page's ingest and the cursor that covers it commit in one transaction, so a crash never moves the
cursor past records that were not ingested. The next pull starts at the cursor's time minus the overlap
window (inclusive), so rows that share the cursor's timestamp or were committed late in the source are
read again; ingest ignores what it already holds. A lease on the cursor row keeps two pulls of the same
(system, domain) from running together; a pull keeps it while it runs (`LeaseKeeper`), however long a page takes.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections import Counter

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from canonical.audit import Channel, audit_context
from canonical.services import exceptions as exc_service
from canonical.services.ingest import source_records_ingest
from connectors.base import Cursor, TransportError
from connectors.models import Connection, SyncCursor, SyncRun, SyncRunStatus
from connectors.registry import connector_for

from . import settings as knobs
from .connections import connection_missing_message
from .leases import LeaseKeeper

logger = logging.getLogger(__name__)


class LeaseLost(RuntimeError):
    pass


class PullError(ValueError):
    """Bad input to a pull: a system without a connection, or with a disabled one."""


def _lease(cursor: SyncCursor, token: str) -> bool:
    now = timezone.now()
    until = now + dt.timedelta(seconds=knobs.lease_seconds())
    return bool(
        SyncCursor.objects.filter(pk=cursor.pk)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now) | Q(lease_token=token))
        .update(lease_until=until, lease_token=token)
    )


def _lease_renew(cursor_pk: int, token: str) -> None:
    """A running pull keeps its cursor's lease (`LeaseKeeper`, every third of it). A page's ingest can take longer
    than the lease (2,000 records record by record); a lease that ran out mid-page let the next scheduled pull take
    the cursor, and the first pull's page was rolled back at its end (LeaseLost), then the second's the same way: a
    pull slower than the lease never got anywhere.

    Never shortened: a renewal that waited for a page's commit (SQLite's write lock) must not write back a time the
    page's own renewal has passed, or one already gone."""
    until = timezone.now() + dt.timedelta(seconds=knobs.lease_seconds())
    SyncCursor.objects.filter(pk=cursor_pk, lease_token=token, lease_until__lt=until).update(lease_until=until)


def pull_domains(connection: Connection) -> list[str]:
    from canonical.domains import DOMAIN_ORDER
    from connectors.registry import connector_class

    wanted = connection.pull_domains or list(connector_class(connection.kind).pull_domains)
    return [d for d in DOMAIN_ORDER if d in wanted]


def pull_run(*, system: str, domain: str, trigger: str = "beat", progress=None) -> SyncRun | None:
    """Pull one domain of one system now. Returns the recorded run, or None if another pull holds the lease."""
    conn = Connection.objects.select_related("system").filter(system_id=system).first()
    if conn is None:
        raise PullError(connection_missing_message(system=system))
    if not conn.enabled:
        raise PullError(f"the connection of '{system}' is disabled; enable it in the admin first")
    cursor, _ = SyncCursor.objects.get_or_create(system_id=system, domain=domain)
    position = Cursor.from_json(cursor.position)
    token = uuid.uuid4().hex
    if not _lease(cursor, token):
        return None
    run = SyncRun.objects.create(system_id=system, domain=domain, direction="pull", trigger=trigger,
                                 cursor_before=cursor.position)  # fmt: skip
    t0 = time.monotonic()
    counts: Counter[str] = Counter()
    errors: list[str] = []
    connector = None
    status = SyncRunStatus.SUCCEEDED
    keeper = LeaseKeeper(lambda: _lease_renew(cursor.pk, token), every=lambda: knobs.lease_seconds() / 3,
                         what=f"the pull cursor of {system} {domain}")  # fmt: skip
    try:
        connector = connector_for(conn)
        with (
            keeper,
            audit_context(actor=f"connector:{system}", channel=Channel.CONNECTOR, reason=f"pull {system} {domain}"),
        ):
            for page in connector.pull(domain=domain, cursor=position, overlap=knobs.pull_overlap()):
                with transaction.atomic():
                    results = source_records_ingest(system=conn.system, domain=domain, envelopes=page.envelopes)
                    if page.in_transaction is not None:
                        page.in_transaction()
                    newer = page.cursor if page.cursor.after(position) else position
                    moved = SyncCursor.objects.filter(pk=cursor.pk, lease_token=token).update(
                        position=newer.as_json(),
                        lease_until=timezone.now() + dt.timedelta(seconds=knobs.lease_seconds()),
                    )
                    if not moved:
                        raise LeaseLost(f"another pull of {system} {domain} took over; this one stops")
                position = newer
                if page.after_commit is not None:
                    page.after_commit()
                run.pages += 1
                counts.update(r.outcome for r in results)
                errors.extend(page.errors)
                if progress is not None:
                    progress(len(page.envelopes))
    except TransportError as exc:
        status = SyncRunStatus.FAILED
        errors.append(str(exc)[:1000])
        if exc.permanent:
            exc_service.exception_raise(
                kind="dead_letter",
                message=f"pull of {domain} from {system} failed permanently: {str(exc)[:300]}. "
                "Check the connection's URL and credentials, then run `manage.py sync --pull`.",
                domain=domain,
                system=system,
                detail={"sync_run": run.pk, "status": exc.status},
            )
    except LeaseLost as exc:
        status = SyncRunStatus.FAILED
        errors.append(str(exc))
    except BaseException as exc:  # a bug, a database error, an interrupt: the run ends failed, the error goes on
        errors.append(f"unexpected error: {exc!r}"[:1000])
        _finish(run, status=SyncRunStatus.FAILED, counts=counts, errors=errors, t0=t0, position=position)
        raise
    finally:
        if connector is not None:
            connector.close()
        SyncCursor.objects.filter(pk=cursor.pk, lease_token=token).update(lease_until=None, lease_token="")
    if errors and status == SyncRunStatus.SUCCEEDED and counts.total() == 0:
        status = SyncRunStatus.FAILED
    _finish(run, status=status, counts=counts, errors=errors, t0=t0, position=position)
    return run


def _finish(run: SyncRun, *, status: str, counts: Counter[str], errors: list[str], t0: float, position: Cursor) -> None:
    run.status = status
    run.counts = dict(counts)
    run.errors = errors[:100]
    run.finished_at = timezone.now()
    run.duration_ms = int((time.monotonic() - t0) * 1000)
    run.cursor_after = position.as_json()
    run.save()
