from django.db import models

from .domains import Domain


class MatchKey(models.Model):
    """The blocking / identifier index: normalised keys of every live source record, pointing at its golden.

    Derived data (rebuilt from source records), so it carries no history of its own, and its link to its source
    record has no foreign-key constraint in the database: source records are never deleted (a delete is a flag),
    the ORM still cascades, and the constraint's check, deferred to each commit, was PostgreSQL's dearest work
    in a bulk load's commits (~8 rows a record: 100,000-row CLI benchmark, 1.5 s of server CPU a file, ~5 % of
    the wall time; docs/benchmarks.md, 29 Nov). Nor is `golden_id` indexed: rows are found by key or by source
    record, and a merge moves its retired record's keys by their source records (~8 random inserts a record
    into a uuid index saved).
    """

    domain = models.CharField(max_length=32, choices=Domain.choices)
    key_type = models.CharField(max_length=32)
    key_value = models.CharField(max_length=255)
    golden_id = models.UUIDField()
    source_record = models.ForeignKey(
        "canonical.SourceRecord", on_delete=models.CASCADE, related_name="match_keys", db_constraint=False
    )

    class Meta:
        indexes = [models.Index(fields=["domain", "key_type", "key_value"], name="match_key_lookup")]

    def __str__(self) -> str:
        return f"{self.domain}:{self.key_type}={self.key_value}"
