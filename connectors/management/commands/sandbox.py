"""python manage.py sandbox serve|configure|deal|lead-to-project: the sandbox systems for the demo."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from canonical.audit import Channel, audit_context
from connectors.sandbox.server import port_number


class Command(BaseCommand):
    help = "Run the sandbox systems, connect the hub to them, and play the lead-to-project flow."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        serve = sub.add_parser("serve", help="run the sandbox server in the foreground")
        serve.add_argument("--port", type=port_number, default=8765, help="1 to 65535")
        serve.add_argument("--store", default=str(Path(settings.VAR_DIR) / "sandbox"))
        configure = sub.add_parser("configure", help="point crm, erp, psa and hr at a running sandbox")
        configure.add_argument("--url", default="http://127.0.0.1:8765")
        for name in ("deal", "lead-to-project"):
            p = sub.add_parser(
                name,
                help="a closed-won deal in the CRM sandbox"
                + ("; then pull, push and pull until the PSA project exists" if name != "deal" else ""),
            )
            p.add_argument("--url", default="http://127.0.0.1:8765")
            p.add_argument("--account", default="Northwind Consulting Ltd")
            p.add_argument("--website", default="https://northwind.example")
            p.add_argument("--amount", default="120000")
            p.add_argument("--currency", default="EUR")

    def handle(self, *args, action: str, **options):
        if action == "serve":
            from connectors.sandbox.server import SandboxStartError, make_server, serve

            try:
                server = make_server(options["port"], Path(options["store"]))
            except SandboxStartError as exc:
                raise CommandError(str(exc)) from None
            return serve(server, store=options["store"])
        if action == "configure":
            from connectors.services.connections import connections_sandbox_configure

            try:
                conns = connections_sandbox_configure(url=options["url"])
            except ValueError as exc:
                raise CommandError(f"--url: {exc}") from None
            for conn in conns:
                self.stdout.write(f"{conn.system_id}: {conn.kind} at {conn.base_url}")
            return None
        opp = self._deal(options)
        if action == "lead-to-project":
            self._flow(opp)
        return None

    def _deal(self, o) -> str:
        base = o["url"].rstrip("/") + "/crm/services/data/v60.0/sobjects"
        try:
            acc = requests.post(f"{base}/Account", json={"Name": o["account"], "Website": o["website"],
                                                         "Industry": "Consulting"}, timeout=10)  # fmt: skip
            acc.raise_for_status()
            today = dt.date.today()
            opp = requests.post(f"{base}/Opportunity", timeout=10, json={
                "Name": f"{o['account']}: delivery programme", "AccountId": acc.json()["id"],
                "StageName": "Closed Won", "IsWon": True, "Amount": float(o["amount"]),
                "CurrencyIsoCode": o["currency"], "CloseDate": today.isoformat(),
                "Start_Date__c": today.isoformat(), "End_Date__c": (today + dt.timedelta(days=180)).isoformat(),
                "Contract_Type__c": "time_and_materials"})  # fmt: skip
            opp.raise_for_status()
        except requests.RequestException as exc:
            raise CommandError(f"the CRM sandbox at {o['url']} did not answer ({exc}); start it with "
                               "`python -m connectors.sandbox --port 8765 --store var/sandbox`") from exc  # fmt: skip
        self.stdout.write(f"CRM: account {acc.json()['id']}, closed-won opportunity {opp.json()['id']}")
        return opp.json()["id"]

    def _flow(self, opp: str) -> None:
        from connectors.models import DealCycle
        from connectors.services.lead_to_project import lead_to_project_run

        with audit_context(actor="command:sandbox", channel=Channel.JOB, reason="lead-to-project demo"):
            steps = lead_to_project_run(opportunity_id=opp)
        for step in steps:
            self.stdout.write(f"  {step}")
        cycle = DealCycle.objects.filter(opportunity_id=opp).first()
        if cycle is None or cycle.project_created_at is None:
            raise CommandError("the project was not created yet: see `manage.py sync` output and the dead letters")
        self.stdout.write(self.style.SUCCESS(
            f"deal {opp}: ERP contract {cycle.erp_contract_number}, PSA project {cycle.psa_project_code}, "
            f"close → project {cycle.cycle_seconds:.1f} s"))  # fmt: skip
