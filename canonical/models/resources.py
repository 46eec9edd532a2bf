from django.db import models

from .base import GoldenRecord


class WorkerType(models.TextChoices):
    EMPLOYEE = "employee"
    CONTRACTOR = "contractor"


class Resource(GoldenRecord):
    """A person who delivers work. The last block of fields is personal data (scope `read:personal`)."""

    DOMAIN = "resource"

    first_name = models.CharField(max_length=128)
    last_name = models.CharField(max_length=128, db_index=True)
    email = models.CharField(max_length=254, null=True, blank=True, db_index=True)
    employee_number = models.CharField(max_length=64, null=True, blank=True, db_index=True)
    employer = models.ForeignKey(
        "canonical.LegalEntity", null=True, blank=True, on_delete=models.SET_NULL, related_name="employees"
    )
    job_title = models.CharField(max_length=255, null=True, blank=True)
    grade = models.CharField(max_length=64, null=True, blank=True)
    worker_type = models.CharField(max_length=16, choices=WorkerType.choices, null=True, blank=True)
    country = models.CharField(max_length=2, null=True, blank=True)
    city = models.CharField(max_length=128, null=True, blank=True)
    cost_rate = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    cost_currency = models.CharField(max_length=3, null=True, blank=True)
    capacity_hours_per_week = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    skills = models.JSONField(default=list, blank=True)
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    # Personal data.
    date_of_birth = models.DateField(null=True, blank=True)
    national_id = models.CharField(max_length=64, null=True, blank=True)
    address_line1 = models.CharField(max_length=255, null=True, blank=True)
    address_line2 = models.CharField(max_length=255, null=True, blank=True)
    postal_code = models.CharField(max_length=32, null=True, blank=True)
    region = models.CharField(max_length=128, null=True, blank=True)

    class Meta(GoldenRecord.Meta):
        pass

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}"
