from django.db import models


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    LEASED = "leased", "Being pushed"
    DONE = "done", "Delivered"
    DEAD = "dead", "Dead letter"


class Delivery(models.Model):
    """The relay's state for one outbox event and one subscribing system.

    Written in the same transaction as the event. Claimed with SELECT … FOR UPDATE SKIP LOCKED and a lease;
    only the oldest open delivery of a (system, golden record) can be claimed, so a record's changes reach
    each system in order. A push sends the golden record's current state, so a successful push also
    completes the same record's later pending deliveries up to the version it sent (`coalesced`).
    """

    event = models.ForeignKey("canonical.ChangeEvent", on_delete=models.CASCADE, related_name="+")
    system = models.ForeignKey("canonical.System", on_delete=models.CASCADE, related_name="+")
    domain = models.CharField(max_length=32)
    golden_id = models.UUIDField()
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(auto_now_add=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=64, blank=True, default="")
    last_error = models.TextField(blank=True, default="")
    remote_id = models.CharField(max_length=255, blank=True, default="")
    coalesced = models.BooleanField(default=False, help_text="Completed by a later push of the same record.")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["event", "system"], name="delivery_unique_event_system")]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_claim"),
            models.Index(fields=["system", "golden_id", "id"], name="delivery_record_order"),
        ]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"event {self.event_id} → {self.system_id} ({self.status})"


class DeadLetter(models.Model):
    """A push (or inbound message) that failed for good; shown to stewards as a `dead_letter` exception."""

    delivery = models.ForeignKey(Delivery, null=True, blank=True, on_delete=models.CASCADE, related_name="dead_letters")
    webhook = models.ForeignKey("connectors.InboundWebhook", null=True, blank=True, on_delete=models.CASCADE,
                                related_name="dead_letters")  # fmt: skip
    system = models.ForeignKey("canonical.System", on_delete=models.CASCADE, related_name="+")
    domain = models.CharField(max_length=32, blank=True, default="")
    golden_id = models.UUIDField(null=True, blank=True)
    error = models.TextField()
    permanent = models.BooleanField(default=True, help_text="False: retries ran out on transient errors.")
    attempts = models.PositiveIntegerField(default=0)
    exception = models.ForeignKey("canonical.DataException", null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")  # fmt: skip
    created_at = models.DateTimeField(auto_now_add=True)
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"dead letter {self.system_id}:{self.domain}:{self.golden_id}: {self.error[:60]}"
