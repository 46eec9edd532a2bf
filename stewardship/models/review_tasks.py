"""Review tasks: the matcher was unsure whether a record is a duplicate, so a steward decides."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from canonical.audit import AuditedHistoricalModel
from canonical.models import Domain


class ReviewStatus(models.TextChoices):
    OPEN = "open", "Open"
    MERGED = "merged", "Merged"
    NOT_A_MATCH = "not_a_match", "Not a match"
    DEFERRED = "deferred", "Deferred"
    CLOSED = "closed", "Closed"


PENDING_REVIEW = (ReviewStatus.OPEN, ReviewStatus.DEFERRED)


class ReviewTask(models.Model):
    """One golden record under review against its candidate duplicates.

    `candidates` keeps, for each candidate golden record, the matcher's score, one-line reason and the
    per-field explanation: ``[{"golden_id", "score", "reason", "comparisons": [{"field", "value_a",
    "value_b", "level", "weight"}]}]``, best first. `score` and `reason` repeat the best candidate's so the
    queue can be filtered and ordered without reading JSON. At most one pending (open or deferred) task per
    golden record.
    """

    domain = models.CharField(max_length=32, choices=Domain.choices)
    golden_id = models.UUIDField(db_index=True, help_text="The golden record under review.")
    source_record = models.ForeignKey(
        "canonical.SourceRecord",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="review_tasks",
        help_text="The source record whose arrival opened the task (empty for batch re-match).",
    )
    candidates = models.JSONField(default=list)
    score = models.FloatField(default=0.0, db_index=True)
    reason = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.OPEN)
    priority = models.IntegerField(default=0, help_text="Higher first.")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True, default="")
    created_by = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    decided_by = models.CharField(max_length=200, blank=True, default="")
    decided_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    history = HistoricalRecords(bases=[AuditedHistoricalModel])

    class Meta:
        ordering = ["-priority", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["domain", "golden_id"],
                condition=models.Q(status__in=["open", "deferred"]),
                name="review_task_one_pending_per_golden",
            ),
        ]
        indexes = [models.Index(fields=["status", "domain", "-priority"], name="review_task_queue")]

    def __str__(self) -> str:
        return f"review {self.domain}:{self.golden_id} ({self.status}, {self.score:.2f})"

    @property
    def is_pending(self) -> bool:
        return self.status in PENDING_REVIEW

    @property
    def candidate_ids(self) -> list[str]:
        return [c["golden_id"] for c in self.candidates]
