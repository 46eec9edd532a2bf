from django.db import models


class DealCycle(models.Model):
    """The lead-to-project cycle of one closed-won deal: from the CRM close to the PSA project."""

    opportunity_id = models.CharField(max_length=64, unique=True)
    contract_golden_id = models.UUIDField(db_index=True)
    closed_at = models.DateTimeField(help_text="When the CRM marked the deal closed-won.")
    contract_created_at = models.DateTimeField(help_text="When the hub made the golden contract.")
    erp_contract_number = models.CharField(max_length=64, blank=True, default="")
    erp_at = models.DateTimeField(null=True, blank=True)
    psa_project_code = models.CharField(max_length=64, blank=True, default="")
    project_created_at = models.DateTimeField(null=True, blank=True)
    cycle_seconds = models.FloatField(null=True, blank=True, help_text="Close → project created in the PSA.")

    class Meta:
        ordering = ["-closed_at"]

    def __str__(self) -> str:
        return f"deal {self.opportunity_id}: {self.cycle_seconds or '…'} s"
