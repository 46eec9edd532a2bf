"""Manage API clients: `api_client create NAME [--system S] [--scope SCOPE ...]`, `list`, `revoke NAME`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from canonical.api.clients import ApiClientError, api_client_create, api_client_revoke, known_scopes
from canonical.audit import Channel, audit_context
from canonical.models import ApiClient


class Command(BaseCommand):
    help = "Create, list and revoke API clients (keys for Authorization: Bearer <key>)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="{create,list,revoke}")
        create = sub.add_parser("create", help="Create a client and print its key once.")
        create.add_argument("name", help="A unique name: letters, digits, '-' or '_'.")
        create.add_argument("--system", help="The system this client ingests as (needed for the ingest scope).")
        create.add_argument(
            "--scope",
            action="append",
            default=[],
            dest="scopes",
            metavar="SCOPE",
            help=f"Repeat for several. One of: {', '.join(known_scopes())}.",
        )
        sub.add_parser("list", help="List clients (never their keys).")
        revoke = sub.add_parser("revoke", help="Disable a client's key for good.")
        revoke.add_argument("name")

    def handle(self, *args, **options):
        action = options["action"]
        with audit_context(actor="cli:api_client", channel=Channel.JOB, reason=f"api_client {action}"):
            try:
                if action == "create":
                    self._create(options)
                elif action == "list":
                    self._list()
                else:
                    client = api_client_revoke(name=options["name"])
                    self.stdout.write(self.style.SUCCESS(f"Revoked API client {client.name!r}."))
            except ApiClientError as exc:
                raise CommandError(str(exc))

    def _create(self, options) -> None:
        if any(not part.strip() for item in options["scopes"] for part in item.split(",")):
            raise ApiClientError(f"an empty --scope; give one of: {', '.join(known_scopes())}")
        if options["system"] is not None and not options["system"].strip():
            raise ApiClientError("--system is empty; give the system this client ingests as, or leave --system out")
        scopes = [s.strip() for item in options["scopes"] for s in item.split(",") if s.strip()]
        client, key = api_client_create(name=options["name"], system=options["system"], scopes=scopes)
        self.stdout.write(self.style.SUCCESS(f"Created API client {client.name!r}."))
        self.stdout.write(f"  system: {client.system_id or '-'}")
        self.stdout.write(f"  scopes: {', '.join(client.scopes) or '(none)'}")
        self.stdout.write("  key (shown only now; store it safely, the hub keeps only a hash):")
        self.stdout.write(key)

    def _list(self) -> None:
        clients = list(ApiClient.objects.order_by("name"))
        if not clients:
            self.stdout.write("No API clients. Create one: manage.py api_client create NAME --scope read:customer")
            return
        header = f"{'NAME':<24} {'SYSTEM':<8} {'STATUS':<8} {'PREFIX':<13} {'LAST USED':<17} SCOPES"
        self.stdout.write(header)
        for c in clients:
            status = "active" if c.is_active else "revoked"
            last = f"{c.last_used_at:%Y-%m-%d %H:%M}" if c.last_used_at else "-"
            scopes = ",".join(c.scopes) or "-"
            self.stdout.write(
                f"{c.name:<24} {c.system_id or '-':<8} {status:<8} {c.key_prefix:<13} {last:<17} {scopes}"
            )
