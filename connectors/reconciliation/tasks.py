"""Celery tasks for reconciliation: thin, they take codes and call the services."""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="connectors.reconcile", ignore_result=True)
def reconcile(system: str, domain: str | None = None) -> dict:
    from .services import ReconciliationError, reconciliation_run

    try:
        run = reconciliation_run(system=system, domain=domain, trigger="beat")
    except ReconciliationError as exc:  # already running, no connection, …: said in the log, not a failed task
        logger.warning("reconciliation skipped", extra={"event": "reconciliation.skipped", "system": system,
                                                        "error": str(exc)})  # fmt: skip
        return {"skipped": str(exc)}
    return {"run": run.pk, "status": run.status, "counts": run.counts, "actions": run.actions}


@shared_task(name="connectors.reconcile_all", ignore_result=True)
def reconcile_all() -> int:
    """Reconcile every enabled connection (the nightly beat entry)."""
    from .services import reconciliation_all

    return len(reconciliation_all(trigger="beat"))
