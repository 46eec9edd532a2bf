"""Dead letters: replay puts the delivery back in the relay's queue and closes the steward's exception."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from canonical.models import DataException, ExceptionStatus
from connectors.models import DeadLetter, Delivery, DeliveryStatus


def dead_letter_replay(*, dead_letter_id: int, note: str = "replayed") -> DeadLetter:
    """Queue the dead letter's push again (fresh attempts). Idempotent: a replayed letter is left alone."""
    with transaction.atomic():
        letter = DeadLetter.objects.select_for_update().get(pk=dead_letter_id)
        if letter.replayed_at is not None:
            return letter
        if letter.delivery_id:
            Delivery.objects.filter(pk=letter.delivery_id, status=DeliveryStatus.DEAD).update(
                status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=timezone.now(), last_error="",
                lease_token="",
            )  # fmt: skip
        letter.replayed_at = timezone.now()
        letter.save(update_fields=["replayed_at"])
        if letter.exception_id:
            exc = DataException.objects.get(pk=letter.exception_id)
            if exc.status == ExceptionStatus.OPEN:
                exc.status = ExceptionStatus.RESOLVED
                exc.resolution_note = note
                exc.resolved_at = timezone.now()
                exc.save()
        from .outbox import relay_kick

        transaction.on_commit(relay_kick)
        return letter


def dead_letter_replay_for_exception(*, exception_id: int, note: str = "replayed") -> DeadLetter | None:
    """Replay from the stewards' exception queue (the action on a `dead_letter` exception): every dead letter it
    stands for that was not replayed yet, oldest first (one exception covers a record's dead letters to every
    system). Returns the last one replayed, or None if there was none."""
    replayed = None
    for pk in (
        DeadLetter.objects.filter(exception_id=exception_id, replayed_at__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    ):
        replayed = dead_letter_replay(dead_letter_id=pk, note=note)
    return replayed
