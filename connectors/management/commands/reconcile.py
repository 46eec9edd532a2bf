"""python manage.py reconcile --system S [--domain D]: compare a system's snapshot with the hub now, with progress."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from connectors.reconciliation.services import ReconciliationError, reconciliation_run


class Command(BaseCommand):
    help = (
        "Reconcile a system with the hub: classify every difference (missing in the hub or the system, field drift, "
        "orphan cross-reference, duplicate in the system), heal what the pipeline can heal, raise the rest."
    )

    def add_arguments(self, parser):
        parser.add_argument("--system", required=True, help="system code (crm, erp, psa, hr, …)")
        parser.add_argument("--domain", help="only this domain")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (shown on a terminal only)")

    def handle(self, *args, system: str, domain: str | None, no_progress: bool, **options):
        with tqdm(desc=f"reconcile {system}", unit=" records", disable=no_progress or None) as bar:
            try:
                run = reconciliation_run(system=system, domain=domain, trigger="command", progress=bar.update)
            except ReconciliationError as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(
            f"reconciliation run {run.pk} of {system} ({', '.join(run.domains) or 'no domains'}): {run.status} in "
            f"{run.duration_ms} ms, {run.records} snapshot records read"
        )
        self.stdout.write(f"  differences: {_counts(run.counts)}")
        self.stdout.write(f"  actions: {_counts(run.actions)}")
        raised = run.actions.get("raised", 0) + run.actions.get("open", 0)
        if raised:
            self.stdout.write(f"  {raised} difference(s) wait for a steward: admin → Exceptions, kind reconciliation")
        for error in run.errors[:10]:
            self.stderr.write(f"  {error}")
        if run.status != "succeeded":
            raise CommandError(
                f"reconciliation of {system} did not complete (see the errors above); fix the connection and run it again"
            )


def _counts(counts: dict) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(counts.items()) if v) or "none"
