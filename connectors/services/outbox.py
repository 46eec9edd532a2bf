"""The outbox's fan-out: for each ChangeEvent, in the transaction that wrote it, one Delivery per system
that should hear of it, and the event's change-feed position.

A system hears of an event when it has an enabled connection, subscribes to the event's domain, is not the
system the change came from (no echo), and its connector's mapping covers at least one changed field.
"""

from __future__ import annotations

import logging

from django.core.cache import cache
from django.db import connection as db_connection
from django.db import transaction
from django.db.models.expressions import RawSQL

from canonical.models import ChangeEvent, ChangeEventType
from connectors.models import Connection, Delivery, FeedEntry
from connectors.registry import connector_class

from .settings import relay_kick_enabled

logger = logging.getLogger(__name__)

_ALWAYS = {ChangeEventType.CREATED, ChangeEventType.DEACTIVATED, ChangeEventType.REACTIVATED,
           ChangeEventType.MERGED, ChangeEventType.UNMERGED}  # fmt: skip


def push_connections() -> list[Connection]:
    """The enabled connections with their systems: what push_targets reads (once per event unless given)."""
    return list(Connection.objects.filter(enabled=True).select_related("system"))


def push_targets(event: ChangeEvent, connections: list[Connection] | None = None) -> list[str]:
    """Codes of the systems this event is pushed to (`connections`: push_connections(), read once for many
    events written together)."""
    targets = []
    for conn in push_connections() if connections is None else connections:
        system = conn.system
        if not system.is_active or system.code == event.origin_system_id:
            continue
        if event.domain not in (system.subscribed_domains or []):
            continue
        try:
            cls = connector_class(conn.kind)
        except KeyError:
            continue
        if event.domain not in cls.push_domains:
            continue
        covered = cls.covers(event.domain)
        if event.type not in _ALWAYS and not (covered & set(event.changed_fields or [])):
            continue
        targets.append(system.code)
    return targets


def outbox_on_event(*, event: ChangeEvent) -> list[Delivery]:
    """Write the feed position and the deliveries of a just-written event (same transaction)."""
    if db_connection.vendor == "postgresql":
        FeedEntry.objects.create(event=event, xid=RawSQL("pg_current_xact_id()::text::bigint", []))
    else:
        FeedEntry.objects.create(event=event, xid=0)
    deliveries = [
        Delivery(event=event, system_id=code, domain=event.domain, golden_id=event.golden_id, version=event.version)
        for code in push_targets(event)
    ]
    if deliveries:
        Delivery.objects.bulk_create(deliveries)
        transaction.on_commit(relay_kick)
    from .deals import deal_on_event

    deal_on_event(event=event)
    return deliveries


def relay_kick() -> None:
    """Ask a worker to run the relay now (at most one queued kick per second; beat is the safety net).

    Runs after a commit: when Redis (the kick's cache key or the broker) cannot be reached it logs a warning and
    returns, as the committed deliveries wait in the database for the relay's next periodic run."""
    if not relay_kick_enabled():
        return
    from django.conf import settings

    from connectors.tasks import relay_run

    try:
        if not settings.CELERY_TASK_ALWAYS_EAGER and not cache.add("connectors:relay-kick", 1, timeout=1):
            return
        relay_run.delay()
    except Exception as exc:  # a Redis or broker outage must not fail the change that was just committed
        logger.warning(
            "could not queue the relay (%s); the deliveries are stored and the relay's next sweep pushes them",
            exc,
            extra={"event": "relay.kick_failed", "error": str(exc)[:300]},
        )
