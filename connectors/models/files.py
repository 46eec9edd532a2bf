from django.db import models


class ProcessedFile(models.Model):
    """A file taken from a file drop, by content hash: the same file dropped again is not ingested twice."""

    system = models.ForeignKey("canonical.System", on_delete=models.CASCADE, related_name="+")
    domain = models.CharField(max_length=32)
    name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    records = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-processed_at"]
        constraints = [models.UniqueConstraint(fields=["system", "domain", "sha256"], name="processed_file_unique")]

    def __str__(self) -> str:
        return f"{self.system_id}:{self.domain}:{self.name}"

    def save(self, *args, **kwargs):
        from canonical.validation import storable_text

        self.errors = storable_text(self.errors)  # they may quote input that was refused for holding a NUL
        super().save(*args, **kwargs)
