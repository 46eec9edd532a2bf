from django.db import models


class FeedEntry(models.Model):
    """The change feed's position of one outbox event, written in the same transaction as the event.

    On PostgreSQL `xid` is the writing transaction's id (pg_current_xact_id()). The feed serves events in
    (xid, event id) order and only those whose transaction is older than the oldest transaction still
    running (pg_snapshot_xmin), so an event that commits late is never behind a reader's cursor. On SQLite
    (one writer at a time, ids assigned under the write lock) `xid` is 0 and event id order is commit order.
    """

    event = models.OneToOneField("canonical.ChangeEvent", primary_key=True, on_delete=models.CASCADE,
                                 related_name="+")  # fmt: skip
    xid = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["xid", "event"]
        indexes = [models.Index(fields=["xid", "event"], name="feed_position")]
        verbose_name_plural = "feed entries"

    def __str__(self) -> str:
        return f"{self.xid}.{self.event_id}"
