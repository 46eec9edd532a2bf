from django.db import models
from simple_history.models import HistoricalRecords

from canonical.audit import AuditedHistoricalModel


class System(models.Model):
    """An application that owns or consumes master data (crm, erp, psa, hr, or one a firm adds)."""

    code = models.SlugField(max_length=32, primary_key=True)
    name = models.CharField(max_length=128)
    kind = models.CharField(max_length=32, blank=True, default="", help_text="crm, erp, psa, hr, file, …")
    description = models.TextField(blank=True, default="")
    priority = models.PositiveSmallIntegerField(
        default=100, help_text="Tie-break in survivorship when no owner and equal recency: lower wins."
    )
    subscribed_domains = models.JSONField(
        default=list, blank=True, help_text="Domains whose golden-record changes are pushed to this system."
    )
    is_active = models.BooleanField(default=True)

    history = HistoricalRecords(bases=[AuditedHistoricalModel])

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code
