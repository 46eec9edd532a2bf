from django.db import models
from simple_history.models import HistoricalRecords

from canonical.audit import AuditedHistoricalModel, IndexedOnly

from .domains import Domain


class CrossReference(models.Model):
    """Which system knows which golden record under which id.

    Written for every source record that reaches a golden record, and for ids that a system assigned
    when the hub pushed a record to it (`source_record` empty then).
    """

    # no index of its own: xref_unique_key (system, domain, source_id) serves lookups by system
    system = models.ForeignKey("canonical.System", on_delete=models.PROTECT, related_name="xrefs", db_index=False)
    domain = models.CharField(max_length=32, choices=Domain.choices)
    source_id = models.CharField(max_length=255)
    golden_id = models.UUIDField(db_index=True)
    source_record = models.OneToOneField(
        "canonical.SourceRecord", null=True, blank=True, on_delete=models.SET_NULL, related_name="xref"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(bases=[AuditedHistoricalModel], no_db_index=IndexedOnly("id", "golden_id"))

    class Meta:
        ordering = ["system", "domain", "source_id"]
        constraints = [models.UniqueConstraint(fields=["system", "domain", "source_id"], name="xref_unique_key")]
        indexes = [models.Index(fields=["domain", "golden_id"], name="xref_golden")]

    def __str__(self) -> str:
        return f"{self.system_id}:{self.domain}:{self.source_id} → {self.golden_id}"
