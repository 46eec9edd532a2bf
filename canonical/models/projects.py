from django.db import models

from .base import GoldenRecord


class Project(GoldenRecord):
    """A delivery engagement."""

    DOMAIN = "project"

    project_code = models.CharField(max_length=64, db_index=True)
    name = models.CharField(max_length=255)
    contract = models.ForeignKey(
        "canonical.Contract", null=True, blank=True, on_delete=models.SET_NULL, related_name="projects"
    )
    customer = models.ForeignKey(
        "canonical.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="projects"
    )
    delivery_entity = models.ForeignKey(
        "canonical.LegalEntity", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    project_manager = models.ForeignKey(
        "canonical.Resource", null=True, blank=True, on_delete=models.SET_NULL, related_name="managed_projects"
    )
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    budget_hours = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    budget_amount = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, null=True, blank=True)

    class Meta(GoldenRecord.Meta):
        pass

    def __str__(self) -> str:
        return f"{self.project_code} {self.name}"
