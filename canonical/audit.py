"""Who changed what, through which channel, in which request, and why.

One context manager, `audit_context`, is entered by every interface (HTTP middleware, Celery tasks,
management commands, steward actions). Every history row written inside it carries the actor, the
channel, the request id and the reason, so that changes outside HTTP are attributed too.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from django.db import models
from django.dispatch import receiver
from simple_history.signals import pre_create_historical_record


class Channel(models.TextChoices):
    WEB = "web", "Web"
    API = "api", "API"
    CONNECTOR = "connector", "Connector"
    STEWARD = "steward", "Steward"
    JOB = "job", "Job"


@dataclass(frozen=True)
class AuditContext:
    actor: str
    channel: str
    request_id: str
    reason: str = ""
    user_id: int | None = None
    # one time for every history row the block writes (a steward's decision: one transaction), so that a read "as of"
    # any instant sees all of the decision or none of it: taken when the first row is written (after the decision's
    # locks, so after any change it waited for); None: each row its own time
    moment: list[dt.datetime] | None = None


_current: contextvars.ContextVar[AuditContext | None] = contextvars.ContextVar("mdm_audit_context", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_context() -> AuditContext:
    ctx = _current.get()
    if ctx is None:
        return AuditContext(actor="system", channel=Channel.JOB, request_id="")
    return ctx


@contextmanager
def audit_context(
    *,
    actor: str,
    channel: str,
    reason: str = "",
    request_id: str | None = None,
    user=None,
    moment: list[dt.datetime] | None = None,
) -> Iterator[AuditContext]:
    """Attribute every change made inside the block. Nested blocks inherit the request id and the `moment`."""
    outer = _current.get()
    rid = request_id or (outer.request_id if outer and outer.request_id else new_request_id())
    ctx = AuditContext(
        actor=actor,
        channel=str(channel),
        request_id=rid,
        reason=reason,
        user_id=getattr(user, "pk", None) if user is not None and getattr(user, "is_authenticated", False) else None,
        moment=moment if moment is not None else (outer.moment if outer else None),
    )
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


@contextmanager
def audit_reason(reason: str) -> Iterator[AuditContext]:
    """Keep the current actor and channel, but give the changes inside a specific reason."""
    ctx = replace(current_context(), reason=reason)
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


class IndexedOnly:
    """`HistoricalRecords(no_db_index=IndexedOnly(...))`: the fields of a history table that keep their index (besides
    simple-history's own: history_date, history_user, and history_request_id from AuditedHistoricalModel). History
    is read by record (`id`: a record's history, `as_of`) and by time, never by a golden record's name, status or
    references, yet simple-history copies every index of the model: the customer history table had 14, each one
    written for every history row of a load. `no_db_index` holds the names whose index is dropped: every one but
    these."""

    def __init__(self, *kept: str) -> None:
        self.kept = frozenset(kept)

    def __contains__(self, name: object) -> bool:
        return name not in self.kept

    def __iter__(self):  # nothing to list: membership is what simple-history asks
        return iter(())


class AuditedHistoricalModel(models.Model):
    """Extra columns on every history table: who (actor), through what (channel), which request."""

    history_actor = models.CharField(max_length=200, blank=True, default="")
    history_channel = models.CharField(max_length=20, choices=Channel.choices, blank=True, default="")
    history_request_id = models.CharField(max_length=64, blank=True, default="", db_index=True)

    class Meta:
        abstract = True


@receiver(pre_create_historical_record)
def _stamp_history(sender, instance, history_instance, **kwargs) -> None:
    ctx = current_context()
    history_instance.history_actor = ctx.actor
    history_instance.history_channel = ctx.channel
    history_instance.history_request_id = ctx.request_id
    if not history_instance.history_change_reason:
        history_instance.history_change_reason = ctx.reason or None
    if history_instance.history_user_id is None and ctx.user_id is not None:
        history_instance.history_user_id = ctx.user_id
    if ctx.moment is not None:
        if not ctx.moment:
            ctx.moment.append(history_instance.history_date)
        history_instance.history_date = ctx.moment[0]


class AuditContextMiddleware:
    """Enter an audit context for each HTTP request (channel api under /api/, web otherwise)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request.META.get("HTTP_X_REQUEST_ID") or new_request_id()  # not .headers: it copies them all
        request_id = request_id[:64]
        channel = Channel.API if request.path.startswith("/api/") else Channel.WEB
        user = getattr(request, "user", None)
        actor = user.get_username() if user is not None and user.is_authenticated else "anonymous"
        with audit_context(actor=actor, channel=channel, request_id=request_id, user=user):
            request.audit_request_id = request_id
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response
