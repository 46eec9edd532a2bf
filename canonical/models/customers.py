from django.db import models

from .base import GoldenRecord


class Customer(GoldenRecord):
    """A client account: the commercial relationship."""

    DOMAIN = "customer"

    name = models.CharField(max_length=255, db_index=True)
    legal_entity = models.ForeignKey(
        "canonical.LegalEntity", null=True, blank=True, on_delete=models.SET_NULL, related_name="customers"
    )
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    industry = models.CharField(max_length=128, null=True, blank=True)
    segment = models.CharField(max_length=64, null=True, blank=True)
    website = models.CharField(max_length=255, null=True, blank=True)
    phone = models.CharField(max_length=64, null=True, blank=True)
    email_domain = models.CharField(max_length=255, null=True, blank=True)
    address_line1 = models.CharField(max_length=255, null=True, blank=True)
    address_line2 = models.CharField(max_length=255, null=True, blank=True)
    city = models.CharField(max_length=128, null=True, blank=True)
    postal_code = models.CharField(max_length=32, null=True, blank=True)
    region = models.CharField(max_length=128, null=True, blank=True)
    country = models.CharField(max_length=2, null=True, blank=True)
    account_owner_email = models.CharField(max_length=254, null=True, blank=True)

    class Meta(GoldenRecord.Meta):
        pass

    def __str__(self) -> str:
        return self.name
