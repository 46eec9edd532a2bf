from django.db import models
from simple_history.models import HistoricalRecords

from canonical.audit import AuditedHistoricalModel

from .domains import Domain


class OwnershipRule(models.Model):
    """Which system is the system of record for a domain (field blank) or for one field of a domain.

    A field-level rule beats the domain-level rule for that field.
    """

    domain = models.CharField(max_length=32, choices=Domain.choices)
    field = models.CharField(max_length=64, blank=True, default="", help_text="Blank: the whole domain.")
    system = models.ForeignKey("canonical.System", on_delete=models.PROTECT, related_name="ownership_rules")
    note = models.CharField(max_length=255, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(bases=[AuditedHistoricalModel])

    class Meta:
        ordering = ["domain", "field"]
        constraints = [models.UniqueConstraint(fields=["domain", "field"], name="ownership_rule_unique_domain_field")]

    def __str__(self) -> str:
        return f"{self.domain}.{self.field or '*'} → {self.system.code}"
