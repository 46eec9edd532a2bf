from django.db import models


class InboundWebhookStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    DONE = "done", "Ingested"
    FAILED = "failed", "Failed"


class InboundWebhook(models.Model):
    """A signed webhook a system pushed to the hub, kept once per (system, webhook id)."""

    system = models.ForeignKey("canonical.System", on_delete=models.CASCADE, related_name="+")
    webhook_id = models.CharField(max_length=128)
    domain = models.CharField(max_length=32)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=InboundWebhookStatus.choices,
                              default=InboundWebhookStatus.RECEIVED)  # fmt: skip
    results = models.JSONField(default=list, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [models.UniqueConstraint(fields=["system", "webhook_id"], name="inbound_webhook_unique")]
        indexes = [models.Index(fields=["status", "received_at"], name="inbound_webhook_status")]

    def __str__(self) -> str:
        return f"{self.system_id} webhook {self.webhook_id} ({self.status})"
