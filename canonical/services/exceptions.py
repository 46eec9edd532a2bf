"""The exception queues: raise (idempotently) and close data-quality, ownership and reference exceptions."""

from __future__ import annotations

import uuid

from django.utils import timezone

from canonical.models import DataException, ExceptionStatus, SourceRecord

_LOOK_UP = object()  # exception_raise's `existing` when the caller has not looked the open exception up
_IN_LIST = 10_000  # ids per query in open_exceptions (a PostgreSQL statement takes at most 65,535 parameters)


def open_exceptions(*, kind: str, source_record_ids: list[int]) -> dict[int, DataException]:
    """The open exception of a kind of each of these source records that has one (where two are open, the one
    `exception_raise` would find: DataException's ordering, the newest first), in one query per 10,000 records: for
    a caller that raises or refreshes many."""
    found: dict[int, DataException] = {}
    for start in range(0, len(source_record_ids), _IN_LIST):
        rows = DataException.objects.filter(
            kind=kind, status=ExceptionStatus.OPEN, source_record_id__in=source_record_ids[start : start + _IN_LIST]
        ).order_by(*DataException._meta.ordering)
        for exc in rows:
            found.setdefault(exc.source_record_id, exc)
    return found


def exception_raise(
    *,
    kind: str,
    message: str,
    source_record: SourceRecord | None = None,
    golden_id: uuid.UUID | None = None,
    detail: dict | None = None,
    domain: str = "",
    system: str | None = None,
    existing: DataException | None | object = _LOOK_UP,
) -> DataException:
    """Open an exception, or refresh the open one of the same kind for the same source record.

    `existing`: the source record's open exception of that kind as `open_exceptions` found it (None: it has
    none), when the caller looked it up for many records at once; by default it is looked up here."""
    detail = detail or {}
    if existing is _LOOK_UP:
        existing = None
        if source_record is not None:
            existing = DataException.objects.filter(
                kind=kind, source_record=source_record, status=ExceptionStatus.OPEN
            ).first()
        elif golden_id is not None:
            # An exception about a golden record itself (no source record): one open per kind and record.
            existing = DataException.objects.filter(
                kind=kind, source_record=None, golden_id=golden_id, status=ExceptionStatus.OPEN
            ).first()
    if existing is not None:
        if existing.message != message or existing.detail != detail or existing.golden_id != golden_id:
            existing.message, existing.detail, existing.golden_id = message, detail, golden_id
            existing.save()
        return existing
    return DataException.objects.create(
        kind=kind,
        message=message,
        detail=detail,
        source_record=source_record,
        golden_id=golden_id,
        domain=source_record.domain if source_record is not None else domain,
        system_id=source_record.system_id if source_record is not None else system,
    )


def exception_close(
    *, kind: str, note: str, source_record: SourceRecord | None = None, golden_id: uuid.UUID | None = None
) -> int:
    """Resolve the open exceptions of a kind for a source record, or for a golden record itself (its cause went away).

    With `golden_id` and no `source_record`, only the golden record's own exceptions (no source record) close.
    """
    closed = 0
    if source_record is not None:
        if source_record.pk is None:
            return 0
        rows = DataException.objects.filter(kind=kind, source_record=source_record, status=ExceptionStatus.OPEN)
    elif golden_id is not None:
        rows = DataException.objects.filter(
            kind=kind, source_record=None, golden_id=golden_id, status=ExceptionStatus.OPEN
        )
    else:
        raise ValueError("exception_close needs a source_record or a golden_id")
    for exc in rows:
        exc.status = ExceptionStatus.RESOLVED
        exc.resolution_note = note
        exc.resolved_at = timezone.now()
        exc.save()
        closed += 1
    return closed
