"""Re-push through the outbox: queue a delivery of a golden record's current state to one system.

The relay sends a record's current state, so one open delivery per (system, golden record) is enough. If
the system already has one open, the push is on its way; a dead one is in the stewards' dead-letter queue.
Otherwise the latest delivery is put back in the queue (a fresh request: new `created_at`, no attempts), or,
when the system never had one, a delivery of the record's latest outbox event is written.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from canonical.models import ChangeEvent
from connectors.models import Delivery, DeliveryStatus

OPEN = (DeliveryStatus.PENDING, DeliveryStatus.LEASED)


@dataclass(frozen=True)
class Requeue:
    state: str  # queued | in_flight | dead | no_event
    delivery_id: int | None = None


def delivery_requeue(*, system: str, domain: str, golden_id: uuid.UUID | str) -> Requeue:
    """Queue a push of the golden record to `system` (idempotent while a push is open)."""
    golden_id = uuid.UUID(str(golden_id))
    with transaction.atomic():
        rows = Delivery.objects.select_for_update().filter(system_id=system, golden_id=golden_id)
        latest = rows.order_by("-id").first()
        if latest is not None and latest.status in OPEN:
            return Requeue("in_flight", latest.pk)
        if latest is not None and latest.status == DeliveryStatus.DEAD:
            return Requeue("dead", latest.pk)
        event = ChangeEvent.objects.filter(golden_id=golden_id, domain=domain).order_by("-id").first()
        if event is None:
            return Requeue("no_event")
        now = timezone.now()
        if latest is None or latest.event_id != event.pk:
            try:
                with transaction.atomic():
                    d = Delivery.objects.create(event=event, system_id=system, domain=domain, golden_id=golden_id,
                                                version=event.version)  # fmt: skip
            except IntegrityError:  # a delivery of this event exists but is not the latest: requeue it
                d = Delivery.objects.get(event=event, system_id=system)
                _reset(d.pk, now)
        else:
            d = latest
            _reset(d.pk, now)
        from connectors.services.outbox import relay_kick

        transaction.on_commit(relay_kick)
        return Requeue("queued", d.pk)


def _reset(pk: int, now) -> None:
    # Delivery is relay state (not history-tracked): a queued re-push is a fresh request.
    Delivery.objects.filter(pk=pk).update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now, created_at=now, delivered_at=None,
        coalesced=False, last_error="", lease_token="", lease_until=None,
    )  # fmt: skip
