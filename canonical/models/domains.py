from django.db import models


class Domain(models.TextChoices):
    LEGAL_ENTITY = "legal_entity", "Legal entity"
    CUSTOMER = "customer", "Customer"
    CONTRACT = "contract", "Contract"
    PROJECT = "project", "Project"
    RESOURCE = "resource", "Resource"
    RATE_CARD = "rate_card", "Rate card"
