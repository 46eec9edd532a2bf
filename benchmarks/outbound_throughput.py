"""Outbound throughput and lag: golden changes pushed per second to the sandbox ERP with 2 Celery workers.

Needs PostgreSQL and Redis (a database and a Redis db of its own: it truncates the outbox tables):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mdm_bench REDIS_URL=redis://127.0.0.1:6379/6 \
        .venv/bin/python benchmarks/outbound_throughput.py --records 1000 --runs 3

It starts the sandbox systems and two `celery worker --pool=solo` processes (one with beat), makes
`--records` golden customers once (through the real ingest pipeline, as the CRM), then per run:
  * burst: one outbox event per customer written in one transaction (change_event_write, the pipeline's
    own outbox write) → time until every delivery is done = throughput; lag = delivered − committed;
  * steady: events at `--rate` per second for `--seconds` → lag p50/p99 at that load.
The ERP takes one upsert per HTTP call (NetSuite has no bulk upsert): the conservative case.
Prints one JSON line per run and a summary with medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")
os.environ["MDM_RELAY_KICK"] = "0"


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=50.0, help="steady-state events per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="steady-state duration per run")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get("REDIS_URL"):
        sys.exit("set DATABASE_URL (PostgreSQL) and REDIS_URL: the benchmark runs real workers against them")

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.MDM_RELAY_KICK = False
    call_command("migrate", verbosity=0)

    import redis
    import requests
    from django.db import connection, transaction
    from django.utils import timezone
    from tqdm import tqdm

    from canonical.audit import Channel, audit_context
    from canonical.domains import get_domain
    from canonical.models import ChangeEvent, ChangeEventType, Customer, SourceRecord
    from canonical.services.golden import change_event_write
    from canonical.services.ingest import envelope_parse, source_records_ingest
    from connectors.models import Connection, Delivery, DeliveryStatus
    from connectors.services.connections import connection_configure

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    store = Path(tempfile.mkdtemp(prefix="mdm-bench-sandbox-"))
    port = 18000 + os.getpid() % 1000
    procs: list[subprocess.Popen] = []
    procs.append(subprocess.Popen([sys.executable, "-m", "connectors.sandbox", "--port", str(port), "--store",
                                   str(store)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  start_new_session=True))  # fmt: skip
    for _ in range(100):
        try:
            requests.get(f"http://127.0.0.1:{port}/_admin/health", timeout=1)
            break
        except requests.RequestException:
            time.sleep(0.1)
    with connection.cursor() as cur:
        cur.execute("TRUNCATE connectors_delivery, connectors_deadletter, connectors_syncrun CASCADE")
    with audit_context(actor="bench", channel=Channel.JOB, reason="benchmark setup"):
        Connection.objects.exclude(system_id="erp").delete()
        connection_configure(system="erp", kind="erp", base_url=f"http://127.0.0.1:{port}/erp")

    have = set(
        SourceRecord.objects.filter(system_id="crm", source_id__startswith="bench-").values_list("source_id", flat=True)
    )
    missing = [i for i in range(args.records) if f"bench-{i:05d}" not in have]
    spec = get_domain("customer")
    with audit_context(actor="bench:crm", channel=Channel.CONNECTOR, reason="benchmark data"):
        for start in tqdm(range(0, len(missing), 100), desc="golden customers", unit=" batches"):
            envs = [envelope_parse({"source_id": f"bench-{i:05d}", "updated_at": "2026-01-01T00:00:00Z",
                                    "attributes": {"name": f"Bench customer {i}", "country": "DE",
                                                   "website": f"https://bench{i}.example"}}, spec=spec)
                    for i in missing[start : start + 100]]  # fmt: skip
            source_records_ingest(system="crm", domain="customer", envelopes=envs)
    golden_ids = list(
        SourceRecord.objects.filter(system_id="crm", source_id__startswith="bench-").order_by("source_id")
        .values_list("golden_id", flat=True)[: args.records]
    )  # fmt: skip

    env = {**os.environ, "MDM_RELAY_KICK": "1", "MDM_RELAY_INTERVAL": "0.5", "CELERY_TASK_ALWAYS_EAGER": "false"}
    logs = Path(tempfile.mkdtemp(prefix="mdm-bench-workers-"))
    for n in range(args.workers):
        cmd = [str(Path(sys.executable).parent / "celery"), "-A", "mdm", "worker", "--pool=solo", "-n",
               f"bench{n}@%h", "--without-gossip", "--without-mingle", "--loglevel=WARNING"]  # fmt: skip
        if n == 0:
            cmd += ["-B", "-s", str(logs / "beat-schedule")]
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=(logs / f"w{n}.log").open("w"),
                                      stderr=subprocess.STDOUT, start_new_session=True))  # fmt: skip

    def drained(timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while Delivery.objects.exclude(status=DeliveryStatus.DONE).exists():
            if time.monotonic() > deadline:
                raise SystemExit(f"deliveries not drained after {timeout} s; see {logs}")
            time.sleep(0.2)

    def lags(since_id: int, committed=None) -> list[float]:
        """delivered − committed: the burst's commit time, or (small transactions) the event's own time."""
        rows = Delivery.objects.filter(event_id__gt=since_id).values_list("delivered_at", "event__occurred_at")
        return [(d - (committed or o)).total_seconds() for d, o in rows]

    def write_events(records) -> int:
        last = 0
        for record in records:
            last = change_event_write(record=record, event_type=ChangeEventType.UPDATED, changed_fields=["name"],
                                      origin_system="crm").pk  # fmt: skip
        return last

    try:
        drained()  # the creation events of the setup, pushed once: warm-up
        customers = list(Customer.objects.filter(pk__in=golden_ids))
        results = []
        for run in range(1, args.runs + 1):
            with audit_context(actor="bench", channel=Channel.JOB, reason="benchmark"):
                first = ChangeEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
                with transaction.atomic():
                    write_events(customers)
                committed = timezone.now()
                relay_kick_all(procs)
                drained()
                last = Delivery.objects.filter(event_id__gt=first).order_by("-delivered_at").first().delivered_at
                burst_seconds = (last - committed).total_seconds()
                burst_lags = lags(first, committed)
                steady_first = ChangeEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
                interval, n = 1.0 / args.rate, 0
                t0 = time.monotonic()
                while time.monotonic() - t0 < args.seconds:
                    with transaction.atomic():
                        write_events([customers[n % len(customers)]])
                    n += 1
                    time.sleep(max(0.0, t0 + n * interval - time.monotonic()))
                drained()
                steady = lags(steady_first)
            row = {"run": run, "records": len(customers), "burst_seconds": round(burst_seconds, 2),
                   "pushed_per_second": round(len(customers) / burst_seconds, 1),
                   "burst_lag_p50": round(pct(burst_lags, 0.5), 3), "burst_lag_p99": round(pct(burst_lags, 0.99), 3),
                   "steady_rate": args.rate, "steady_events": len(steady),
                   "steady_lag_p50": round(pct(steady, 0.5), 3), "steady_lag_p99": round(pct(steady, 0.99), 3)}  # fmt: skip
            results.append(row)
            print(json.dumps(row), flush=True)
        summary = {k: statistics.median(r[k] for r in results) for k in results[0] if k != "run"}
        summary.update(workers=args.workers, machine=f"{platform.machine()} {os.cpu_count()} cores",
                       python=platform.python_version())  # fmt: skip
        print("median:", json.dumps(summary))
    finally:
        for p in procs:  # each in its own process group: beat's child goes too
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(10)


def relay_kick_all(procs) -> None:
    """Kick the relay once per worker (beat would within its interval; this starts the clock sharply)."""
    from connectors.tasks import relay_run

    for _ in range(len(procs) - 1):
        relay_run.delay()


if __name__ == "__main__":
    main()
