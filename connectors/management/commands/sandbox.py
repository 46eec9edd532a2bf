"""python manage.py sandbox serve|configure|deal|lead-to-project: the sandbox systems for the demo."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urlsplit

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
            p.add_argument("--amount", default="120000", help="the deal's value: a number of at most 2 decimals, ≥ 0")
            p.add_argument("--currency", default="EUR")

    def handle(self, *args, action: str, **options):
        if action == "serve":
            from connectors.sandbox.server import SandboxStartError, make_server, serve

            try:
                server = make_server(options["port"], Path(options["store"]))
            except SandboxStartError as exc:
                raise CommandError(str(exc)) from None
            return serve(server, store=options["store"])
        from connectors.services.connections import connections_sandbox_configure, sandbox_url_validate

        if action == "configure":
            try:
                conns = connections_sandbox_configure(url=options["url"])
            except ValueError as exc:
                raise CommandError(f"--url: {exc}") from None
            for conn in conns:
                self.stdout.write(f"{conn.system_id}: {conn.kind} at {conn.base_url}")
            return None
        # Everything is checked before the first call to the sandbox: a refused run changes nothing anywhere.
        try:
            options["url"] = sandbox_url_validate(url=options["url"])
        except ValueError as exc:
            raise CommandError(f"--url: {exc}") from None
        amount = _amount(options["amount"])
        _deal_options_check(options)
        if action == "lead-to-project":
            from connectors.services.lead_to_project import LeadToProjectError, lead_to_project_check

            try:
                lead_to_project_check()
            except LeadToProjectError as exc:
                raise CommandError(str(exc)) from None
        opp = self._deal(options, amount)
        if action == "lead-to-project":
            self._flow(opp, url=options["url"])
        return None

    def _deal(self, o, amount: Decimal) -> str:
        url = o["url"]
        base = url + "/crm/services/data/v60.0/sobjects"
        try:
            acc = _created(url, "Account", requests.post(f"{base}/Account", timeout=10, json={
                "Name": o["account"], "Website": o["website"], "Industry": "Consulting"}))  # fmt: skip
            today = dt.date.today()
            opp = _created(url, "Opportunity", requests.post(f"{base}/Opportunity", timeout=10, json={
                "Name": f"{o['account']}: delivery programme", "AccountId": acc,
                "StageName": "Closed Won", "IsWon": True, "Amount": float(amount),
                "CurrencyIsoCode": o["currency"], "CloseDate": today.isoformat(),
                "Start_Date__c": today.isoformat(), "End_Date__c": (today + dt.timedelta(days=180)).isoformat(),
                "Contract_Type__c": "time_and_materials"}))  # fmt: skip
        except requests.ConnectionError as exc:  # refused, no such host, or no answer to the connect
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            raise CommandError(f"the CRM sandbox at {url} cannot be reached ({_reason(exc)}); if it is not running, "
                               f"start it with `manage.py sandbox serve --port {port}`, or pass --url with the address "
                               "it listens on") from None  # fmt: skip
        except requests.Timeout:
            raise CommandError(f"the CRM sandbox at {url} took the connection but did not answer within 10 s; check "
                               "that --url is the sandbox's address (and not another server's)") from None  # fmt: skip
        except requests.RequestException as exc:
            raise CommandError(f"the CRM sandbox at {url} could not be asked ({exc}); check --url") from None
        self.stdout.write(f"CRM: account {acc}, closed-won opportunity {opp}")
        return opp

    def _flow(self, opp: str, *, url: str) -> None:
        from connectors.models import DealCycle
        from connectors.services.lead_to_project import LeadToProjectError, lead_to_project_run
        from connectors.services.pull import PullError

        try:
            with audit_context(actor="command:sandbox", channel=Channel.JOB, reason="lead-to-project demo"):
                outcome = lead_to_project_run(opportunity_id=opp)
        except (LeadToProjectError, PullError) as exc:  # a connection removed or disabled meanwhile
            raise CommandError(str(exc)) from None
        for step in outcome.steps:
            self.stdout.write(f"  {step}")
        if outcome.failed:
            raise CommandError(f"the flow stopped: {outcome.failed} (the error is above). Check that the connections "
                               f"point at the sandbox (`manage.py sandbox configure --url {url}`) and that it runs, "
                               "then run the flow again")  # fmt: skip
        cycle = DealCycle.objects.filter(opportunity_id=opp).first()
        if cycle is None or cycle.project_created_at is None:
            raise CommandError("the project was not created yet: see `manage.py sync` output and the dead letters")
        self.stdout.write(self.style.SUCCESS(
            f"deal {opp}: ERP contract {cycle.erp_contract_number}, PSA project {cycle.psa_project_code}, "
            f"close → project {cycle.cycle_seconds:.1f} s"))  # fmt: skip


def _deal_options_check(options: dict) -> None:
    """The deal's account, website and currency, checked as the hub will check them once pulled: a value it would
    refuse is refused here, before anything is written to the CRM sandbox."""
    from canonical.domains import get_domain
    from canonical.validation import FieldError, clean_value

    options["account"] = (options["account"] or "").strip()
    if not options["account"]:
        raise CommandError("--account: give the client's name (it cannot be empty)")
    for option, domain, field in (("website", "customer", "website"), ("currency", "contract", "currency")):
        try:
            clean_value(get_domain(domain).get(field), options[option], system="crm", country=None)
        except FieldError as exc:
            raise CommandError(f"--{option}: {exc}") from None


def _amount(text: str) -> Decimal:
    """--amount as a Decimal that fits the hub's contract value; CommandError saying what is wrong otherwise."""
    from canonical.models import Contract

    field = Contract._meta.get_field("total_value")
    whole = field.max_digits - field.decimal_places
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite():
        raise CommandError(f"--amount {text!r} is not a number; give the deal's value, e.g. --amount 120000")
    if amount < 0:
        raise CommandError(f"--amount {text} is negative; a deal's value is 0 or more")
    if amount >= Decimal(10) ** whole or amount != amount.quantize(Decimal(1).scaleb(-field.decimal_places)):
        raise CommandError(f"--amount {text} does not fit a contract's value (at most {whole} digits before the "
                           f"decimal point and {field.decimal_places} after)")  # fmt: skip
    return amount


def _created(url: str, obj: str, resp: requests.Response) -> str:
    """The id of the record the CRM sandbox created; CommandError naming the HTTP status if it did not."""
    if not resp.ok:
        raise CommandError(f"the CRM sandbox at {url} answered HTTP {resp.status_code} {resp.reason} to creating the "
                           f"{obj} ({resp.text[:200].strip() or 'no detail'}); check that --url is the sandbox's "
                           "address and the arguments") from None  # fmt: skip
    try:
        return str(resp.json()["id"])
    except (ValueError, TypeError, KeyError):
        raise CommandError(f"the answer of {url} to creating the {obj} has no record id: is --url the CRM sandbox's "
                           f"address? ({resp.text[:200].strip()})") from None  # fmt: skip


def _reason(exc: requests.ConnectionError) -> str:
    """The innermost cause of a connection error (e.g. "[Errno 111] Connection refused"), not urllib3's wrapping."""
    cause: BaseException = exc
    for _ in range(10):
        if isinstance(cause, OSError) and cause.errno is not None:
            return str(cause)
        inner = getattr(cause, "reason", None)  # urllib3's MaxRetryError keeps its cause as .reason
        if not isinstance(inner, BaseException):
            first = cause.args[0] if cause.args else None
            inner = first if isinstance(first, BaseException) else cause.__cause__ or cause.__context__
        if inner is None:
            break
        cause = inner
    return str(exc)
