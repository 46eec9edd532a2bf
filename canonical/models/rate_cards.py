from django.db import models

from .base import GoldenRecord


class RateCard(GoldenRecord):
    """Bill rates by role. `lines` is a list of {role, grade, unit, rate}; rates are decimal strings."""

    DOMAIN = "rate_card"

    code = models.CharField(max_length=64, db_index=True)
    name = models.CharField(max_length=255, null=True, blank=True)
    currency = models.CharField(max_length=3)
    valid_from = models.DateField(null=True, blank=True)
    valid_to = models.DateField(null=True, blank=True)
    customer = models.ForeignKey(
        "canonical.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="rate_cards"
    )
    lines = models.JSONField(default=list, blank=True)

    class Meta(GoldenRecord.Meta):
        pass

    def __str__(self) -> str:
        return self.code
