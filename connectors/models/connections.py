from django.db import models
from simple_history.models import HistoricalRecords

from canonical.audit import AuditedHistoricalModel


class ConnectionKind(models.TextChoices):
    CRM = "crm", "CRM (Salesforce REST style)"
    ERP = "erp", "ERP (NetSuite REST style)"
    PSA = "psa", "PSA (Kantata style)"
    HR = "hr", "HR (Workday report style)"
    FILEDROP = "filedrop", "File drop (CSV / JSON Lines in a folder)"
    WEBHOOK = "webhook", "Webhooks (signed, both ways)"


class Connection(models.Model):
    """How the hub reaches one system: which connector, where, with which secret.

    A system with no enabled connection is neither pulled nor pushed to. `pull_domains` empty means the
    connector's own default list; `options` holds connector settings (page size, folder, report name, …).
    """

    system = models.OneToOneField("canonical.System", primary_key=True, on_delete=models.CASCADE,
                                  related_name="connection")  # fmt: skip
    kind = models.CharField(max_length=16, choices=ConnectionKind.choices)
    base_url = models.CharField(max_length=500, help_text="API root, webhook target URL, or file-drop folder.")
    secret = models.CharField(max_length=200, blank=True, default="", help_text="HMAC secret for webhooks.")
    pull_domains = models.JSONField(default=list, blank=True)
    options = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(bases=[AuditedHistoricalModel], excluded_fields=["secret"])

    class Meta:
        ordering = ["system"]

    def __str__(self) -> str:
        return f"{self.system_id} via {self.kind} at {self.base_url}"
