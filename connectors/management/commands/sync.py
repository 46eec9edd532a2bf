"""python manage.py sync --system S [--domain D] [--pull | --push]: sync a system now, with progress."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from redis.exceptions import RedisError
from tqdm import tqdm

from canonical.audit import Channel, audit_context
from canonical.domains import DOMAINS
from connectors.models import Connection, Delivery, DeliveryStatus
from connectors.registry import connector_class


class Command(BaseCommand):
    help = "Pull a system's changes and/or push the hub's pending changes to it now; each run is recorded."

    def add_arguments(self, parser):
        parser.add_argument("--system", required=True, help="system code (crm, erp, psa, hr, …)")
        parser.add_argument("--domain", help="only this domain")
        way = parser.add_mutually_exclusive_group()
        way.add_argument("--pull", action="store_true", help="only pull from the system")
        way.add_argument("--push", action="store_true", help="only push pending changes to the system")
        parser.add_argument("--no-progress", action="store_true", help="no progress bars (shown on a terminal only)")

    def handle(self, *args, system: str, domain: str | None, pull: bool, push: bool, no_progress: bool, **options):
        from connectors.services.connections import connection_missing_message
        from connectors.services.pull import pull_domains, pull_run
        from connectors.services.relay import deliveries_pending, relay_none_reached, relay_run

        conn = Connection.objects.filter(system_id=system).first()
        if conn is None:
            raise CommandError(connection_missing_message(system=system))
        if domain and domain not in DOMAINS:
            raise CommandError(f"unknown domain '{domain}'; expected one of {', '.join(DOMAINS)}")
        if not conn.enabled:
            raise CommandError(f"the connection of '{system}' is disabled; enable it in the admin first")
        cls = connector_class(conn.kind)
        do_pull = not push and bool(cls.pull_domains)
        do_push = not pull and bool(cls.push_domains)
        failed = False
        if do_pull:
            domains = [d for d in pull_domains(conn) if not domain or d == domain]
            if domain and not domains:
                self.stdout.write(f"{system} does not pull {domain}; nothing to pull")
            for d in domains:
                with tqdm(desc=f"pull {system} {d}", unit=" records", disable=no_progress or None) as bar:
                    run = pull_run(system=system, domain=d, trigger="command", progress=bar.update)
                if run is None:
                    self.stdout.write(f"pull {system} {d}: another pull is running; try again when it ends")
                    continue
                failed |= run.status != "succeeded"
                self.stdout.write(f"pull {system} {d}: {run.status} in {run.duration_ms} ms, pages {run.pages}, "
                                  f"{_counts(run.counts)}")  # fmt: skip
                for error in run.errors[:10]:
                    self.stderr.write(f"  {error}")
        if do_push:
            total = deliveries_pending(system=system, domain=domain)
            try:
                with audit_context(actor=f"command:sync:{system}", channel=Channel.CONNECTOR,
                                   reason=f"sync push {system}"):  # fmt: skip
                    with tqdm(total=total, desc=f"push {system}", unit=" changes", disable=no_progress or None) as bar:
                        totals = relay_run(system=system, domain=domain, max_seconds=3600, trigger="command",
                                           progress=bar.update)  # fmt: skip
            except RedisError as exc:  # the relay keeps its pauses and locks there
                done = "the pulls above were recorded; " if do_pull else ""
                raise CommandError(f"cannot reach Redis at REDIS_URL ({exc}); {done}start Redis, then run "
                                   f"`manage.py sync --system {system} --push` again") from None  # fmt: skip
            stats = totals.get(system)
            summary = _counts(stats.as_dict()) if stats else "nothing to push"
            self.stdout.write(f"push {system}: {summary}")
            waiting = Delivery.objects.filter(system_id=system, status=DeliveryStatus.PENDING)
            if domain:
                waiting = waiting.filter(domain=domain)
            if waiting.exists():
                nxt = waiting.order_by("next_attempt_at").first()
                when = "now" if nxt.next_attempt_at <= timezone.now() else f"at {nxt.next_attempt_at:%H:%M:%S}"
                tried = waiting.exclude(last_error="").order_by("-attempts", "next_attempt_at").first()
                error = f"; last error: {tried.last_error[:200]}" if tried is not None else ""
                self.stdout.write(f"  {waiting.count()} change(s) wait for a retry (next {when}{error})")
            if stats and stats.errors:
                for error in stats.errors[:10]:
                    self.stderr.write(f"  {error}")
            if stats and relay_none_reached(stats):
                failed = True  # every push tried failed: the system is down or refuses the hub
                self.stderr.write(f"  none of the {stats.claimed} change(s) tried reached {system}; they are "
                                  "retried later (see the errors above)")  # fmt: skip
            if stats and stats.dead:
                failed = True
                self.stderr.write(f"  {stats.dead} dead letter(s): see the exception queue (kind dead_letter), "
                                  "fix the cause, then replay")  # fmt: skip
        if failed:
            raise CommandError(f"sync of {system} finished with errors (see above and the recorded sync runs)")


def _counts(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if v) or "no changes"
