from django.db import models


class SyncCursor(models.Model):
    """Where the last pull of one system's domain got to: a compound (modification time, id) position.

    Saved in the same transaction as the batch it covers. The lease keeps two pulls of the same
    (system, domain) from running at once (claimed by compare-and-set, expires if a worker dies).
    """

    system = models.ForeignKey("canonical.System", on_delete=models.CASCADE, related_name="+")
    domain = models.CharField(max_length=32)
    position = models.JSONField(default=dict, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=64, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["system", "domain"]
        constraints = [models.UniqueConstraint(fields=["system", "domain"], name="sync_cursor_unique")]

    def __str__(self) -> str:
        return f"{self.system_id}:{self.domain} @ {self.position}"
