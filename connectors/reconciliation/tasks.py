"""Celery tasks for reconciliation: thin, they take codes and call the services."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="connectors.reconcile", ignore_result=True)
def reconcile(system: str, domain: str | None = None) -> dict:
    from .services import reconciliation_run

    run = reconciliation_run(system=system, domain=domain, trigger="beat")
    return {"run": run.pk, "status": run.status, "counts": run.counts, "actions": run.actions}


@shared_task(name="connectors.reconcile_all", ignore_result=True)
def reconcile_all() -> int:
    """Reconcile every enabled connection (the nightly beat entry)."""
    from .services import reconciliation_all

    return len(reconciliation_all(trigger="beat"))
