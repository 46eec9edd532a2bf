from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from canonical.audit import AuditedHistoricalModel, IndexedOnly

from .domains import Domain


class ExceptionKind(models.TextChoices):
    VALIDATION = "validation", "Data-quality: invalid value"
    INCOMPLETE = "incomplete", "Data-quality: required field missing"
    OWNERSHIP_CONFLICT = "ownership_conflict", "Ownership conflict"
    UNRESOLVED_REFERENCE = "unresolved_reference", "Unresolved reference"
    DEAD_LETTER = "dead_letter", "Sync dead letter"
    RECONCILIATION = "reconciliation", "Reconciliation difference"


class ExceptionStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"
    IGNORED = "ignored", "Ignored"


class DataException(models.Model):
    """Something the hub could not decide or apply alone, waiting for a person.

    One open exception per (kind, source record); it resolves itself when its cause goes away
    (a corrected record arrives, the reference target arrives, the conflict disappears).
    """

    kind = models.CharField(max_length=32, choices=ExceptionKind.choices, db_index=True)
    status = models.CharField(
        max_length=10, choices=ExceptionStatus.choices, default=ExceptionStatus.OPEN, db_index=True
    )
    domain = models.CharField(max_length=32, choices=Domain.choices, blank=True, default="")
    system = models.ForeignKey("canonical.System", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    source_record = models.ForeignKey(
        "canonical.SourceRecord", null=True, blank=True, on_delete=models.CASCADE, related_name="exceptions"
    )
    golden_id = models.UUIDField(null=True, blank=True, db_index=True)
    message = models.TextField()
    detail = models.JSONField(default=dict, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolution_note = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords(bases=[AuditedHistoricalModel], no_db_index=IndexedOnly("id"))

    class Meta:
        ordering = ["-created_at", "id"]
        verbose_name = "exception"
        indexes = [models.Index(fields=["status", "kind", "domain"], name="exception_queue")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.message[:80]}"
