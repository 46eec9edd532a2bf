"""Run the lead-to-project flow now, step by step (the demo; in production beat does the same steps)."""

from __future__ import annotations

from dataclasses import dataclass, field

from connectors.models import Connection, DealCycle, SyncRunStatus

from .pull import pull_run
from .relay import relay_run

FLOW_SYSTEMS = ("crm", "erp", "psa")


class LeadToProjectError(ValueError):
    """The flow cannot run: a system it needs has no connection, or a disabled one."""


@dataclass
class LeadToProjectOutcome:
    steps: list[str] = field(default_factory=list)
    failed: str = ""  # the step that stopped the flow (a pull that failed), if one did


def lead_to_project_check() -> None:
    """Raise LeadToProjectError, saying what to do, unless crm, erp and psa all have enabled connections."""
    enabled = dict(Connection.objects.filter(system_id__in=FLOW_SYSTEMS).values_list("system_id", "enabled"))
    missing = [code for code in FLOW_SYSTEMS if code not in enabled]
    disabled = [code for code in FLOW_SYSTEMS if enabled.get(code) is False]
    problems = []
    if missing:
        problems.append(f"no connection for {', '.join(missing)}")
    if disabled:
        problems.append(f"the connection of {', '.join(disabled)} is disabled")
    if problems:
        raise LeadToProjectError(
            f"the lead-to-project flow needs enabled connections for {', '.join(FLOW_SYSTEMS)}, but "
            f"{' and '.join(problems)}. Run `manage.py sandbox configure --url URL` to point them at the sandbox, "
            "or configure (and enable) them in the admin."
        )


def lead_to_project_run(*, opportunity_id: str, rounds: int = 3) -> LeadToProjectOutcome:
    """Pull the CRM, push to the ERP and PSA, pull them back, until the deal's project exists. A pull that
    fails stops the flow (what comes after it would only repeat the failure)."""
    lead_to_project_check()
    out = LeadToProjectOutcome()

    def pull(system: str, domain: str) -> bool:
        run = pull_run(system=system, domain=domain, trigger="command")
        if run is None:
            out.steps.append(f"pull {system} {domain}: busy (another pull holds the cursor)")
        elif run.status == SyncRunStatus.FAILED:
            error = run.errors[0] if run.errors else "no error recorded"
            out.failed = f"pull {system} {domain} failed"
            out.steps.append(f"pull {system} {domain}: failed ({error})")
        else:
            out.steps.append(f"pull {system} {domain}: {run.status}, {_counts(run.counts)}")
        return not out.failed

    for _ in range(rounds):
        for system, domain in (("crm", "customer"), ("crm", "contract")):
            if not pull(system, domain):
                return out
        for system in ("erp", "psa"):
            totals = relay_run(system=system, max_seconds=60, trigger="command")
            stats = totals.get(system)
            if stats is None:
                out.steps.append(f"push {system}: nothing pending")
                continue
            step = f"push {system}: {_counts(stats.as_dict())}"
            if stats.errors:
                step += f" (last error: {stats.errors[-1]})"
            out.steps.append(step)
        for system, domain in (("erp", "contract"), ("psa", "project")):
            if not pull(system, domain):
                return out
        relay_run(max_seconds=60, trigger="command")
        cycle = DealCycle.objects.filter(opportunity_id=opportunity_id).first()
        if cycle is not None and cycle.project_created_at is not None:
            break
    return out


def _counts(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if v) or "no changes"
