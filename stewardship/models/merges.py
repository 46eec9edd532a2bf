"""The merge log: what a merge moved, so that an unmerge can put each piece back exactly."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from canonical.audit import AuditedHistoricalModel
from canonical.models import Domain


class MergeDecision(models.Model):
    """One merge: the survivor, the golden records it retired, who decided it and why."""

    domain = models.CharField(max_length=32, choices=Domain.choices)
    survivor_id = models.UUIDField(db_index=True)
    retired_ids = models.JSONField(default=list)
    field_choices = models.JSONField(default=dict, blank=True)
    # the steward overrides field_choices set on the survivor: lifted when an unmerge undoes this merge
    override_ids = models.JSONField(default=list, blank=True)
    reason = models.TextField()
    actor = models.CharField(max_length=200, blank=True, default="")
    channel = models.CharField(max_length=20, blank=True, default="")
    request_id = models.CharField(max_length=64, blank=True, default="")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    review_task = models.ForeignKey(
        "stewardship.ReviewTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="merges"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    history = HistoricalRecords(bases=[AuditedHistoricalModel])

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"merge #{self.pk} {self.domain}: {', '.join(self.retired_ids)} → {self.survivor_id}"


class MergeMove(models.Model):
    """A source record (or a cross-reference without one) that a merge moved from a retired golden record."""

    merge = models.ForeignKey(MergeDecision, on_delete=models.CASCADE, related_name="moves")
    source_record = models.ForeignKey(
        "canonical.SourceRecord", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    xref = models.ForeignKey(
        "canonical.CrossReference", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    from_golden_id = models.UUIDField(db_index=True)
    to_golden_id = models.UUIDField()
    unmerged_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords(bases=[AuditedHistoricalModel])

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["source_record", "to_golden_id"], name="merge_move_source")]

    def __str__(self) -> str:
        return f"{self.source_record_id or self.xref_id}: {self.from_golden_id} → {self.to_golden_id}"


class ReferenceVia(models.TextChoices):
    RECOMPUTE = "recompute", "Recomputed from its sources (references follow the merge)"
    OVERRIDE = "override", "A steward override of the reference was re-pointed"
    DIRECT = "direct", "Set directly (the record has no live source)"


class MergeReference(models.Model):
    """A reference from another golden record (a contract's customer, …) that a merge moved to the survivor."""

    merge = models.ForeignKey(MergeDecision, on_delete=models.CASCADE, related_name="references")
    domain = models.CharField(max_length=32, choices=Domain.choices)
    golden_id = models.UUIDField(db_index=True)
    field = models.CharField(max_length=64)
    from_golden_id = models.UUIDField(db_index=True)
    to_golden_id = models.UUIDField()
    via = models.CharField(max_length=16, choices=ReferenceVia.choices, default=ReferenceVia.RECOMPUTE)
    override = models.ForeignKey(
        "canonical.FieldOverride", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    restored_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords(bases=[AuditedHistoricalModel])

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.domain}:{self.golden_id}.{self.field}: {self.from_golden_id} → {self.to_golden_id}"
