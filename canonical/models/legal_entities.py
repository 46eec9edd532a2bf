from django.db import models

from .base import GoldenRecord


class LegalEntity(GoldenRecord):
    """A registered company: a client's contracting entity or one of the firm's own (`is_internal`)."""

    DOMAIN = "legal_entity"

    name = models.CharField(max_length=255)
    registration_number = models.CharField(max_length=64, null=True, blank=True, db_index=True)
    tax_id = models.CharField(max_length=64, null=True, blank=True, db_index=True)
    country = models.CharField(max_length=2)
    address_line1 = models.CharField(max_length=255, null=True, blank=True)
    address_line2 = models.CharField(max_length=255, null=True, blank=True)
    city = models.CharField(max_length=128, null=True, blank=True)
    postal_code = models.CharField(max_length=32, null=True, blank=True)
    region = models.CharField(max_length=128, null=True, blank=True)
    website = models.CharField(max_length=255, null=True, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    is_internal = models.BooleanField(default=False)
    functional_currency = models.CharField(max_length=3, null=True, blank=True)

    class Meta(GoldenRecord.Meta):
        verbose_name = "legal entity"
        verbose_name_plural = "legal entities"

    def __str__(self) -> str:
        return f"{self.name} ({self.country})"
