from django.db import models

from .base import GoldenRecord


class ContractType(models.TextChoices):
    TIME_AND_MATERIALS = "time_and_materials"
    FIXED_FEE = "fixed_fee"
    MILESTONE = "milestone"
    RETAINER = "retainer"


class BillingSchedule(models.TextChoices):
    MONTHLY = "monthly"
    MILESTONE = "milestone"
    UPFRONT = "upfront"
    ON_COMPLETION = "on_completion"


class RevenueTreatment(models.TextChoices):
    RATABLE = "ratable"
    MILESTONE = "milestone"
    AS_INVOICED = "as_invoiced"


class Contract(GoldenRecord):
    """A signed statement of work or master agreement."""

    DOMAIN = "contract"

    contract_number = models.CharField(max_length=64, db_index=True)
    title = models.CharField(max_length=255, null=True, blank=True)
    customer = models.ForeignKey("canonical.Customer", on_delete=models.PROTECT, related_name="contracts")
    counterparty = models.ForeignKey(
        "canonical.LegalEntity", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    contracting_entity = models.ForeignKey(
        "canonical.LegalEntity", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    contract_type = models.CharField(max_length=32, choices=ContractType.choices, null=True, blank=True)
    currency = models.CharField(max_length=3, null=True, blank=True)
    total_value = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    signed_date = models.DateField(null=True, blank=True)
    rate_card = models.ForeignKey(
        "canonical.RateCard", null=True, blank=True, on_delete=models.SET_NULL, related_name="contracts"
    )
    billing_schedule = models.CharField(max_length=32, choices=BillingSchedule.choices, null=True, blank=True)
    revenue_treatment = models.CharField(max_length=32, choices=RevenueTreatment.choices, null=True, blank=True)
    opportunity_id = models.CharField(max_length=64, null=True, blank=True, db_index=True)

    class Meta(GoldenRecord.Meta):
        pass

    def __str__(self) -> str:
        return f"{self.contract_number} {self.title or ''}".strip()
