"""Run the lead-to-project flow now, step by step (the demo; in production beat does the same steps)."""

from __future__ import annotations

from connectors.models import DealCycle

from .pull import pull_run
from .relay import relay_run


def lead_to_project_run(*, opportunity_id: str, rounds: int = 3) -> list[str]:
    """Pull the CRM, push to the ERP and PSA, pull them back, until the deal's project exists."""
    steps: list[str] = []
    for _ in range(rounds):
        for system, domain in (("crm", "customer"), ("crm", "contract")):
            run = pull_run(system=system, domain=domain, trigger="command")
            steps.append(f"pull {system} {domain}: {run.counts if run else 'busy'}")
        for system in ("erp", "psa"):
            totals = relay_run(system=system, max_seconds=60, trigger="command")
            steps.append(f"push {system}: {totals[system].as_dict() if system in totals else 'nothing pending'}")
        for system, domain in (("erp", "contract"), ("psa", "project")):
            run = pull_run(system=system, domain=domain, trigger="command")
            steps.append(f"pull {system} {domain}: {run.counts if run else 'busy'}")
        relay_run(max_seconds=60, trigger="command")
        cycle = DealCycle.objects.filter(opportunity_id=opportunity_id).first()
        if cycle is not None and cycle.project_created_at is not None:
            break
    return steps
