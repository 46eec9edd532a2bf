"""Reconciliation runs and their items, and the operations models (worker heartbeat, dashboard entry)."""

from django.db import models


class ReconciliationStatus(models.TextChoices):
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class DifferenceKind(models.TextChoices):
    MISSING_IN_HUB = "missing_in_hub", "Missing in the hub"
    MISSING_IN_SYSTEM = "missing_in_system", "Missing in the system"
    FIELD_DRIFT = "field_drift", "Field drift"
    ORPHAN_XREF = "orphan_xref", "Orphan cross-reference"
    DUPLICATE_IN_SYSTEM = "duplicate_in_system", "Duplicate in the system"


class DifferenceAction(models.TextChoices):
    HEALED = "healed", "Healed (re-ingested or re-pushed)"
    RAISED = "raised", "Raised for a steward"
    OPEN = "open", "Already waiting for a steward"
    IN_FLIGHT = "in_flight", "A push is already on its way"


class ReconciliationRun(models.Model):
    """One comparison of a system's snapshot with the hub: what differed, and what was done about it.

    `counts` holds differences by kind, `actions` by action; `records` is how many snapshot records were
    read. Items hold each difference.
    """

    system = models.ForeignKey("canonical.System", on_delete=models.CASCADE, related_name="+")
    domains = models.JSONField(default=list, blank=True)
    trigger = models.CharField(max_length=16, default="beat", help_text="beat, command, test")
    status = models.CharField(max_length=12, choices=ReconciliationStatus.choices,
                              default=ReconciliationStatus.RUNNING)  # fmt: skip
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    records = models.PositiveIntegerField(default=0, help_text="Snapshot records read.")
    counts = models.JSONField(default=dict, blank=True, help_text="Differences by kind.")
    actions = models.JSONField(default=dict, blank=True, help_text="Differences by action.")
    errors = models.JSONField(default=list, blank=True)
    request_id = models.CharField(max_length=64, blank=True, default="", help_text="Correlation id of the run.")

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["system", "started_at"], name="reconciliation_run_system")]

    def __str__(self) -> str:
        return f"reconciliation {self.system_id} #{self.pk} ({self.status})"

    def save(self, *args, **kwargs):
        from canonical.validation import storable_text

        self.errors = storable_text(self.errors)  # they may quote input that was refused for holding a NUL
        super().save(*args, **kwargs)

    @property
    def differences(self) -> int:
        return sum(self.counts.values()) if self.counts else 0


class ReconciliationItem(models.Model):
    """One difference found by a run. `fields` holds field drift: {field: {"hub": …, "system": …}}."""

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="items")
    domain = models.CharField(max_length=32)
    kind = models.CharField(max_length=24, choices=DifferenceKind.choices)
    action = models.CharField(max_length=12, choices=DifferenceAction.choices)
    source_id = models.CharField(max_length=255, blank=True, default="")
    golden_id = models.UUIDField(null=True, blank=True)
    fields = models.JSONField(default=dict, blank=True)
    reason = models.CharField(max_length=255, blank=True, default="")
    outcome = models.CharField(max_length=255, blank=True, default="", help_text="What healing did.")
    exception = models.ForeignKey("canonical.DataException", null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")  # fmt: skip

    class Meta:
        ordering = ["run", "id"]
        indexes = [models.Index(fields=["run", "kind"], name="reconciliation_item_kind")]

    def __str__(self) -> str:
        return f"{self.kind} {self.domain} {self.source_id or self.golden_id} ({self.action})"


class ReconciliationSeen(models.Model):
    """Source ids a running reconciliation has read from the snapshot (kept in the database, not in memory,
    so the pass for records missing from the system stays flat in memory); removed when the run ends."""

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="+", db_constraint=False)
    domain = models.CharField(max_length=32)
    source_id = models.CharField(max_length=255)

    class Meta:
        indexes = [models.Index(fields=["run", "domain", "source_id"], name="reconciliation_seen_key")]

    def __str__(self) -> str:
        return f"run {self.run_id}: {self.domain} {self.source_id}"


class WorkerHeartbeat(models.Model):
    """The last sign of life of a Celery worker (written by a beat task, read by /health)."""

    worker = models.CharField(max_length=200, primary_key=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.worker} @ {self.at:%Y-%m-%d %H:%M:%S}"


class OperationsDashboard(ReconciliationRun):
    """The operations dashboard's entry in the admin (a proxy: no table of its own)."""

    class Meta:
        proxy = True
        verbose_name = "operations dashboard"
        verbose_name_plural = "operations dashboard"
