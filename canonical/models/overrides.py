from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from canonical.audit import AuditedHistoricalModel

from .domains import Domain


class FieldOverride(models.Model):
    """A steward's pinned value for one field of one golden record. Beats every system; needs a reason."""

    domain = models.CharField(max_length=32, choices=Domain.choices)
    golden_id = models.UUIDField(db_index=True)
    field = models.CharField(max_length=64)
    value = models.JSONField(null=True, blank=True)
    reason = models.TextField()
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(bases=[AuditedHistoricalModel])

    class Meta:
        ordering = ["domain", "golden_id", "field"]
        constraints = [
            models.UniqueConstraint(
                fields=["domain", "golden_id", "field"],
                condition=models.Q(is_active=True),
                name="field_override_one_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.domain}:{self.golden_id}.{self.field} = {self.value!r}"
