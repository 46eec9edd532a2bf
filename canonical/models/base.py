"""What every golden record has: id, status, version, timestamps, merge pointer and per-field provenance."""

from __future__ import annotations

import uuid

from django.db import models
from simple_history.models import HistoricalRecords

from canonical.audit import AuditedHistoricalModel, IndexedOnly


class GoldenStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive"
    MERGED = "merged", "Merged"


class GoldenRecord(models.Model):
    """Abstract base of the six golden-record models.

    `provenance` maps each field to where its value came from:
    ``{"name": {"system": "crm", "source_record": 12, "source_id": "001..", "rule": "owner", "at": "..."}}``.
    """

    DOMAIN: str = ""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    status = models.CharField(max_length=10, choices=GoldenStatus.choices, default=GoldenStatus.ACTIVE, db_index=True)
    version = models.PositiveIntegerField(default=1)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged_from", db_index=True
    )
    provenance = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    history = HistoricalRecords(inherit=True, bases=[AuditedHistoricalModel], no_db_index=IndexedOnly("id"))

    class Meta:
        abstract = True
        ordering = ["-updated_at", "id"]
