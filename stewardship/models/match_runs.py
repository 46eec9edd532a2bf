"""A batch re-match run: which partitions are done, so that an interrupted run can resume."""

from __future__ import annotations

from django.db import models

from canonical.models import Domain


class MatchRunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    FINISHED = "finished", "Finished"


class KeysState(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"


class MatchRun(models.Model):
    """`python manage.py match --domain D`: keys rebuilt once, then partitions matched one by one.

    Operational bookkeeping (what a run got through), not master data, so it has no history; the merges and
    review tasks it makes are audited on their own.
    """

    domain = models.CharField(max_length=32, choices=Domain.choices)
    partitions = models.PositiveIntegerField()
    keys_state = models.CharField(max_length=10, choices=KeysState.choices, default=KeysState.PENDING)
    finished_partitions = models.JSONField(default=list)
    status = models.CharField(max_length=10, choices=MatchRunStatus.choices, default=MatchRunStatus.RUNNING)
    counts = models.JSONField(default=dict)
    actor = models.CharField(max_length=200, blank=True, default="")
    request_id = models.CharField(max_length=64, blank=True, default="")
    started_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"match run #{self.pk} {self.domain} {len(self.finished_partitions)}/{self.partitions}"

    @property
    def last_finished_partition(self) -> int | None:
        return max(self.finished_partitions) if self.finished_partitions else None

    @property
    def remaining_partitions(self) -> list[int]:
        done = set(self.finished_partitions)
        return [p for p in range(self.partitions) if p not in done]
