"""Celery tasks: thin interfaces to the connector services. They take ids and codes, never instances.

Reliability comes from the database, not from the broker: deliveries, cursors and webhooks are rows with
leases, so a lost task (worker killed, Redis restarted) only delays work until beat runs the next one.
No task is scheduled with an ETA or countdown: retry times live in Delivery.next_attempt_at.
"""

from __future__ import annotations

import logging

from celery import shared_task

from canonical.audit import Channel, audit_context

logger = logging.getLogger(__name__)


@shared_task(name="connectors.relay_run", ignore_result=True)
def relay_run(system: str | None = None, domain: str | None = None) -> dict:
    from .services.relay import relay_run as run

    with audit_context(actor="connector:relay", channel=Channel.CONNECTOR, reason="outbox relay"):
        totals = run(system=system, domain=domain, trigger="beat")
    return {code: stats.as_dict() for code, stats in totals.items()}


@shared_task(name="connectors.pull", ignore_result=True)
def pull(system: str, domain: str) -> dict | None:
    from .services.pull import pull_run

    run = pull_run(system=system, domain=domain, trigger="beat")
    return None if run is None else {"run": run.pk, "status": run.status, "counts": run.counts}


@shared_task(name="connectors.pulls_due", ignore_result=True)
def pulls_due() -> int:
    """Queue a pull of every domain of every enabled connection that pulls (beat)."""
    from .models import Connection
    from .services.pull import pull_domains

    queued = 0
    for conn in Connection.objects.filter(enabled=True).exclude(kind="webhook"):
        for domain in pull_domains(conn):
            pull.delay(conn.system_id, domain)
            queued += 1
    return queued


@shared_task(name="connectors.webhook_process", ignore_result=True)
def webhook_process(webhook_pk: int) -> None:
    from .services.webhooks import webhook_process as process

    process(webhook_pk=webhook_pk)


@shared_task(name="connectors.webhooks_sweep", ignore_result=True)
def webhooks_sweep() -> int:
    """Ingest webhooks whose task was lost (e.g. the broker restarted before a worker took it)."""
    from .services.webhooks import webhook_process as process
    from .services.webhooks import webhooks_waiting

    pks = webhooks_waiting()
    for pk in pks:
        process(webhook_pk=pk)
    return len(pks)
