from django.db import models

from .domains import Domain


class SourceStatus(models.TextChoices):
    APPLIED = "applied", "Applied to a golden record"
    INVALID = "invalid", "Invalid (data-quality exception)"
    INCOMPLETE = "incomplete", "Incomplete (data-quality exception)"
    PENDING_REFERENCE = "pending_reference", "Held for a reference not yet received"
    DELETED = "deleted", "Deleted in its system"


class SourceRecord(models.Model):
    """One system's version of one record, exactly as received, plus what the hub made of it.

    `attributes` is what arrived; `values` is the last valid, normalised form (what survivorship reads);
    `errors` the validation messages of the last receipt; `conflicts` the owned fields where this record
    disagrees with the owner's value (kept here, never applied).
    """

    # no index of its own: source_record_unique_key (system, domain, source_id) serves lookups by system
    system = models.ForeignKey(
        "canonical.System", on_delete=models.PROTECT, related_name="source_records", db_index=False
    )
    domain = models.CharField(max_length=32, choices=Domain.choices)
    source_id = models.CharField(max_length=255)
    attributes = models.JSONField(default=dict)
    values = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(help_text="The source system's own modification time.")
    deleted = models.BooleanField(default=False)
    content_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=20, choices=SourceStatus.choices, db_index=True)
    errors = models.JSONField(default=dict, blank=True)
    conflicts = models.JSONField(default=dict, blank=True)
    # indexed with its domain (source_record_golden), as every look-up by golden record asks: not alone as well,
    # which cost every insert its upkeep and, with statistics older than the table, let the planner pair it with
    # the status index (each golden record's sources read through every applied record's entry)
    golden_id = models.UUIDField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["system", "domain", "source_id"]
        constraints = [
            models.UniqueConstraint(fields=["system", "domain", "source_id"], name="source_record_unique_key"),
        ]
        indexes = [models.Index(fields=["domain", "golden_id"], name="source_record_golden")]

    def __str__(self) -> str:
        return f"{self.system_id}:{self.domain}:{self.source_id}"

    @property
    def is_live(self) -> bool:
        return not self.deleted and self.status == SourceStatus.APPLIED
