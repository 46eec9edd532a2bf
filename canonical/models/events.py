import uuid

from django.db import models

from .domains import Domain


class ChangeEventType(models.TextChoices):
    CREATED = "golden.created"
    UPDATED = "golden.updated"
    DEACTIVATED = "golden.deactivated"
    REACTIVATED = "golden.reactivated"
    MERGED = "golden.merged"
    UNMERGED = "golden.unmerged"


class ChangeEvent(models.Model):
    """The outbox: one row per golden-record change, written in the same transaction as the change.

    `origin_system` is the system whose data caused the change: the relay never echoes it back there.
    `id` orders the change feed.
    """

    id = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(max_length=32, choices=ChangeEventType.choices)
    domain = models.CharField(max_length=32, choices=Domain.choices)
    golden_id = models.UUIDField(db_index=True)
    version = models.PositiveIntegerField()
    changed_fields = models.JSONField(default=list, blank=True)
    data = models.JSONField(default=dict, blank=True)
    origin_system = models.ForeignKey(
        "canonical.System", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.CharField(max_length=200, blank=True, default="")
    request_id = models.CharField(max_length=64, blank=True, default="")
    occurred_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"#{self.id} {self.type} {self.domain}:{self.golden_id} v{self.version}"
