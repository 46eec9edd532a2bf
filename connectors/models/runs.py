from django.db import models


class SyncRunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    BUSY = "busy", "Skipped: another run holds the lease"


class SyncRun(models.Model):
    """One pull or push run: what it did, how long it took, what went wrong."""

    system = models.ForeignKey("canonical.System", on_delete=models.CASCADE, related_name="+")
    domain = models.CharField(max_length=32, blank=True, default="")
    direction = models.CharField(max_length=8, choices=[("pull", "Pull"), ("push", "Push")])
    trigger = models.CharField(max_length=16, default="beat", help_text="beat, command, webhook, kick")
    status = models.CharField(max_length=12, choices=SyncRunStatus.choices, default=SyncRunStatus.RUNNING)
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    pages = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True, help_text="Records by outcome.")
    errors = models.JSONField(default=list, blank=True)
    cursor_before = models.JSONField(default=dict, blank=True)
    cursor_after = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["system", "direction", "started_at"], name="sync_run_system")]

    def __str__(self) -> str:
        return f"{self.direction} {self.system_id}:{self.domain or '*'} {self.status}"

    def save(self, *args, **kwargs):
        from canonical.validation import storable_text

        self.errors = storable_text(self.errors)  # they may quote input that was refused for holding a NUL
        super().save(*args, **kwargs)
