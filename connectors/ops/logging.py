"""Structured logs: JSON lines with a correlation id that follows a record through the hub.

The correlation id is the audit request id: the API middleware takes it from `X-Request-ID` (or makes one),
pulls and jobs open their own, and every ChangeEvent stores the one it was written under, so the relay logs
each delivery with the id of the change it carries. A line is
``{"ts", "level", "logger", "message", "correlation_id", "actor", "channel", ...extra fields}``.

Observers (signal receivers, connected at start-up) log the steps the pipeline does not log itself:
receipt and processing of a source record, its cross-reference (the match), the golden change and the
deliveries the outbox queued for it. They cost a level check when INFO is off.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

logger = logging.getLogger("mdm.trace")

_RESERVED = set(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", (), None))) | {"message", "asctime"}


def _context():
    """The audit context (actor, channel, request id), or None before the apps are loaded."""
    from django.apps import apps

    if not apps.ready:
        return None
    from canonical.audit import current_context

    return current_context()


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the audit context's request id as `correlation_id` unless the record has one."""

    def format(self, record: logging.LogRecord) -> str:
        ctx = _context()
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = ctx.request_id if ctx is not None else ""
        correlation = getattr(record, "correlation_id", None) or request_id
        if correlation:
            out["correlation_id"] = correlation
        if request_id:
            out["actor"], out["channel"] = ctx.actor, ctx.channel
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_") and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


# --- observers ------------------------------------------------------------------------------------------------


def _never_fail(observer):
    """A log line must never fail the write it describes."""

    def safe(*args, **kwargs) -> None:
        try:
            observer(*args, **kwargs)
        except Exception:  # noqa: BLE001
            logging.getLogger(__name__).debug("trace observer failed", exc_info=True)

    safe.__name__ = observer.__name__
    return safe


@_never_fail
def _source_record_saved(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    if raw or not logger.isEnabledFor(logging.INFO) or not instance.content_hash:
        return
    logger.info("source record %s", instance.status, extra={
        "event": "source_record.processed", "system": instance.system_id, "domain": instance.domain,
        "source_id": instance.source_id, "status": instance.status, "golden_id": str(instance.golden_id or ""),
        "updated_at": instance.updated_at})  # fmt: skip


@_never_fail
def _xref_saved(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    if raw or not logger.isEnabledFor(logging.INFO):
        return
    logger.info("cross-reference %s", "created" if created else "moved", extra={
        "event": "xref.linked", "system": instance.system_id, "domain": instance.domain,
        "source_id": instance.source_id, "golden_id": str(instance.golden_id), "new": created})  # fmt: skip


@_never_fail
def _change_event_saved(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    if raw or not created or not logger.isEnabledFor(logging.INFO):
        return
    from connectors.models import Delivery

    common = {"correlation_id": instance.request_id, "domain": instance.domain, "golden_id": str(instance.golden_id),
              "version": instance.version, "change_event": instance.pk}  # fmt: skip
    logger.info("golden record %s", instance.type, extra={
        "event": "golden.changed", "type": instance.type, "changed_fields": instance.changed_fields,
        "origin_system": instance.origin_system_id, **common})  # fmt: skip
    targets = list(Delivery.objects.filter(event=instance).values_list("system_id", flat=True))
    logger.info("outbox event queued for %d system(s)", len(targets), extra={
        "event": "outbox.queued", "targets": targets, **common})  # fmt: skip


def observers_connect() -> None:
    from django.db.models.signals import post_save

    from canonical.models import ChangeEvent, CrossReference, SourceRecord

    post_save.connect(_source_record_saved, sender=SourceRecord, dispatch_uid="ops.trace.source_record")
    post_save.connect(_xref_saved, sender=CrossReference, dispatch_uid="ops.trace.xref")
    # After connectors.outbox (connected first), so the event's deliveries exist when it is logged.
    post_save.connect(_change_event_saved, sender=ChangeEvent, dispatch_uid="ops.trace.change_event")
