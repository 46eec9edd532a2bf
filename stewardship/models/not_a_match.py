"""A steward's decision that two records are not the same thing: never proposed (or auto-merged) again."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from canonical.audit import AuditedHistoricalModel
from canonical.models import Domain


class NotAMatch(models.Model):
    """A pair of source records declared different (stored with the lower id first).

    Kept per source record, not per golden record, so the decision survives merges and unmerges: a golden
    record is excluded as a candidate for another as long as any pair spans their source records.
    """

    domain = models.CharField(max_length=32, choices=Domain.choices)
    source_record_a = models.ForeignKey("canonical.SourceRecord", on_delete=models.CASCADE, related_name="+")
    source_record_b = models.ForeignKey("canonical.SourceRecord", on_delete=models.CASCADE, related_name="+")
    reason = models.TextField()
    is_active = models.BooleanField(default=True)
    origin = models.CharField(max_length=16, default="review", help_text="review, unmerge or api.")
    review_task = models.ForeignKey(
        "stewardship.ReviewTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="not_a_match_pairs"
    )
    created_by = models.CharField(max_length=200, blank=True, default="")
    created_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(bases=[AuditedHistoricalModel])

    class Meta:
        ordering = ["-created_at", "id"]
        verbose_name = "not-a-match decision"
        constraints = [
            models.UniqueConstraint(fields=["source_record_a", "source_record_b"], name="not_a_match_unique_pair"),
            models.CheckConstraint(
                condition=models.Q(source_record_a__lt=models.F("source_record_b")), name="not_a_match_ordered_pair"
            ),
        ]
        indexes = [models.Index(fields=["source_record_b"], name="not_a_match_b")]

    def __str__(self) -> str:
        return f"{self.domain}: {self.source_record_a_id} ≠ {self.source_record_b_id}"
