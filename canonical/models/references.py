from django.db import models

from .domains import Domain


class PendingReference(models.Model):
    """A reference from a source record to a record the hub has not received yet.

    Resolved (and the source record re-processed) when the target arrives.
    """

    source_record = models.ForeignKey(
        "canonical.SourceRecord", on_delete=models.CASCADE, related_name="pending_references"
    )
    field = models.CharField(max_length=64)
    target_system = models.ForeignKey("canonical.System", on_delete=models.PROTECT, related_name="+")
    target_domain = models.CharField(max_length=32, choices=Domain.choices)
    target_source_id = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["source_record", "field"], name="pending_reference_unique_field"),
        ]
        indexes = [
            models.Index(fields=["target_system", "target_domain", "target_source_id"], name="pending_ref_target"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.source_record} .{self.field} → {self.target_system_id}:{self.target_domain}:{self.target_source_id}"
        )
