"""Celery tasks of the stewardship app: thin wrappers that take ids and call the services.

Batch re-match (`python manage.py match`) fans out here: one task per partition of golden records (the
command rebuilds the match keys first). Eager (in-process) when no broker is configured.
"""

from __future__ import annotations

from celery import shared_task

from stewardship.services.rematch import match_partition_run


@shared_task(name="stewardship.match_partition", acks_late=True)
def match_partition_task(run_id: int, partition: int) -> dict[str, int]:
    return match_partition_run(run_id=run_id, partition=partition)
