"""Steward actions on the exception queues: retry, resolve, ignore (with a reason), assign."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from canonical.models import DataException, ExceptionStatus
from canonical.services.ingest import IngestResult, source_record_reprocess

from .common import NotFound, StewardshipError, require_reason, steward_action


def _open_exception(exception_id: Any) -> DataException:
    try:
        pk = int(exception_id)
    except (TypeError, ValueError):
        raise StewardshipError({"exception": [f"'{exception_id}' is not an exception id"]})
    exc = DataException.objects.filter(pk=pk).first()
    if exc is None:
        raise NotFound({"exception": [f"no exception {pk}"]})
    if exc.status != ExceptionStatus.OPEN:
        raise StewardshipError({"status": [f"exception {pk} is already {exc.get_status_display().lower()}"]})
    return exc


def data_exception_retry(*, exception_id: int, user=None, reason: str = "") -> tuple[DataException, IngestResult]:
    """Run the exception's source record through the pipeline again (after a rule or reference was fixed); for a
    dead letter, replay the push that failed (its outcome is "replayed").

    The pipeline closes the exception itself when its cause went away; otherwise it stays open (refreshed).
    """
    exc = _open_exception(exception_id)
    if exc.kind == "dead_letter":  # a push that failed for good: replay it (after the cause was fixed)
        from connectors.services.dead_letters import dead_letter_replay_for_exception

        why = (reason or "").strip() or f"replay of dead letter (exception {exc.pk})"
        with steward_action(reason=why, user=user):
            letter = dead_letter_replay_for_exception(exception_id=exc.pk, note=why)
        if letter is None:
            raise StewardshipError(
                {"exception": [f"exception {exc.pk} has no dead letter to replay; resolve or ignore it instead"]}
            )
        exc.refresh_from_db()
        return exc, IngestResult(source_id="", outcome="replayed", golden_id=str(letter.golden_id or "") or None,
                                 message=f"the failed pushes of {letter.domain} {letter.golden_id} are queued again")  # fmt: skip
    if exc.source_record_id is None:
        raise StewardshipError(
            {"exception": [f"exception {exc.pk} has no source record to re-process; resolve or ignore it instead"]}
        )
    why = (reason or "").strip() or f"retry of exception {exc.pk}"
    with steward_action(reason=why, user=user):
        result = source_record_reprocess(exc.source_record)
    exc.refresh_from_db()
    return exc, result


def data_exception_resolve(*, exception_id: int, note: str = "", user=None) -> DataException:
    """Mark an exception handled (the steward fixed the cause elsewhere)."""
    exc = _open_exception(exception_id)
    note = (note or "").strip()
    with steward_action(reason=note or "resolved by a steward", user=user):
        exc.status = ExceptionStatus.RESOLVED
        exc.resolution_note = note
        exc.resolved_at = timezone.now()
        exc.save()
    return exc


def data_exception_ignore(*, exception_id: int, reason: str, user=None) -> DataException:
    """Close an exception without acting on it; the reason is required and kept."""
    errors: dict[str, list[str]] = {}
    reason = require_reason(reason, errors, what="ignoring an exception")
    exc = _open_exception(exception_id)
    if errors:
        raise StewardshipError(errors)
    with steward_action(reason=reason, user=user):
        exc.status = ExceptionStatus.IGNORED
        exc.resolution_note = reason
        exc.resolved_at = timezone.now()
        exc.save()
    return exc


def data_exception_assign(*, exception_id: int, assignee, user=None) -> DataException:
    exc = _open_exception(exception_id)
    who = assignee.get_username() if assignee is not None else "nobody"
    with steward_action(reason=f"assigned to {who}", user=user):
        exc.assignee = assignee
        exc.save()
    return exc
