from django.db import models


class ApiClient(models.Model):
    """A program that calls the API. Its key is shown once at creation; only a SHA-256 hash is kept.

    Scopes: `read:<domain>`, `read:personal`, `ingest` (as `system` only), `steward`.
    """

    name = models.SlugField(max_length=64, unique=True)
    system = models.ForeignKey(
        "canonical.System", null=True, blank=True, on_delete=models.PROTECT, related_name="api_clients"
    )
    scopes = models.JSONField(default=list)
    key_prefix = models.CharField(max_length=12, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class IdempotencyKey(models.Model):
    """A stored response to an ingest request, replayed when the same Idempotency-Key comes again."""

    client_name = models.CharField(max_length=200)  # the request's actor: "client:<name>" or a staff user
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client_name", "key"], name="idempotency_key_unique")]

    def __str__(self) -> str:
        return f"{self.client_name}:{self.key}"
