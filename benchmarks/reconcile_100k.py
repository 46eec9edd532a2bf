"""Benchmark: reconcile 100,000 records of one system (the CRM's accounts) against the hub.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mdm_ops .venv/bin/python benchmarks/reconcile_100k.py \
        [--records 100000] [--runs 3] [--store var/bench-sandbox]

It migrates the database, starts the sandbox systems as their own process, seeds N accounts in the sandbox
CRM and fills the hub with what a pull of them leaves there (in bulk, from the CRM's own snapshot; `--seed
pipeline` pulls them through the ingest pipeline instead, which is far slower); a later invocation with the
same database and store reuses them. Then it times `reconciliation_run(system="crm", domain="customer")` `--runs` times
(records/s, median) and does one more run under tracemalloc, reading the peak of Python allocations when
25%, 50% and 100% of the snapshot has been compared: flat means the snapshot is streamed, not held.
Each reconciliation must find no difference (the hub and the CRM are in step), so all the work measured is the
comparison itself. Prints one JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")
os.environ.setdefault("MDM_RELAY_KICK", "0")
# The sandbox CRM builds a query's whole answer before its first page (a real CRM streams it): allow for that.
os.environ.setdefault("MDM_HTTP_TIMEOUT", "300")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def seed_sandbox(store: Path, n: int) -> int:
    """Write N accounts straight into the sandbox's own store (the remote system's data), before it starts."""
    from connectors.sandbox.store import Store

    box = Store(store)
    have = box.db.execute("SELECT count(*) FROM records WHERE system='crm' AND object='Account'").fetchone()[0]
    if have >= n:
        return have
    rows = []
    for i in range(have, n):
        rid = f"0015g00000{i:08d}"
        data = {"Name": f"Company {i:06d}", "Website": f"https://company{i:06d}.example", "Industry": "Consulting",
                "BillingCity": "Berlin", "BillingCountryCode": "DE"}  # fmt: skip
        modified = f"2026-01-01T00:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d}.{i % 1000:03d}Z"
        rows.append(("crm", "Account", rid, None, modified, 0, json.dumps(data, sort_keys=True)))
    with box.lock:
        box.db.execute("BEGIN")
        box.db.executemany("INSERT OR REPLACE INTO records (system, object, id, ext_id, modified, deleted, data) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)  # fmt: skip
        box.db.execute("COMMIT")
    return n


def seed_hub_direct(n: int, progress) -> None:
    """What a pull of the CRM's accounts leaves in the hub (golden record, source record with the same content
    hash, cross-reference, with history), written in bulk from the CRM's own snapshot: the pipeline's ingest is
    about 100x slower than reconciliation and is benchmarked on its own."""
    import uuid

    from django.db import transaction
    from simple_history.utils import bulk_create_with_history

    from canonical.audit import Channel, audit_context
    from canonical.domains import get_domain
    from canonical.models import CrossReference, Customer, SourceRecord
    from canonical.services.ingest import content_hash
    from canonical.validation import validate_attributes
    from connectors.models import Connection
    from connectors.registry import connector_for

    spec = get_domain("customer")
    known = set(SourceRecord.objects.filter(system_id="crm", domain="customer").values_list("source_id", flat=True))
    connector = connector_for(Connection.objects.get(system_id="crm"))
    with audit_context(actor="bench:seed", channel=Channel.JOB, reason="benchmark data"):
        for page in connector.snapshot(domain="customer"):
            goldens, sources = [], []
            for env in page.envelopes:
                if env.source_id in known:
                    continue
                values, _ = validate_attributes(spec, env.attributes, system="crm")
                gid = uuid.uuid4()
                goldens.append(Customer(id=gid, **{k: v for k, v in values.items() if v is not None}))
                sources.append(SourceRecord(system_id="crm", domain="customer", source_id=env.source_id,
                                            attributes=env.attributes, values=values, updated_at=env.updated_at,
                                            deleted=False, content_hash=content_hash(env.attributes, env.deleted),
                                            status="applied", golden_id=gid))  # fmt: skip
            with transaction.atomic():
                bulk_create_with_history(goldens, Customer)
                SourceRecord.objects.bulk_create(sources)
                xrefs = [CrossReference(system_id="crm", domain="customer", source_id=sr.source_id,
                                        golden_id=sr.golden_id, source_record_id=sr.pk) for sr in sources]  # fmt: skip
                bulk_create_with_history(xrefs, CrossReference)
            progress(len(page.envelopes))
    connector.close()


def start_sandbox(store: Path, port: int) -> subprocess.Popen:
    import requests

    proc = subprocess.Popen([sys.executable, "-m", "connectors.sandbox", "--port", str(port), "--store", str(store)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    for _ in range(100):
        try:
            if requests.get(f"http://127.0.0.1:{port}/_admin/health", timeout=1).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the sandbox did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--store", default=str(ROOT / "var" / "bench-sandbox"))
    parser.add_argument("--port", type=int, default=18765)
    parser.add_argument(
        "--seed",
        choices=["direct", "pipeline"],
        default="direct",
        help="fill the hub in bulk (default) or by pulling through the ingest pipeline (slow)",
    )
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from tqdm import tqdm

    from canonical.models import SourceRecord
    from connectors.reconciliation.services import reconciliation_run
    from connectors.services.connections import connections_sandbox_configure
    from connectors.services.pull import pull_run

    settings.MDM_RELAY_KICK = False
    call_command("migrate", verbosity=0)
    store = Path(args.store)
    n = seed_sandbox(store, args.records)
    proc = start_sandbox(store, args.port)
    try:
        connections_sandbox_configure(url=f"http://127.0.0.1:{args.port}", systems=["crm"])
        held = SourceRecord.objects.filter(system_id="crm", domain="customer").count()
        if held < n:
            t0 = time.monotonic()
            with tqdm(total=n, desc=f"seed the hub ({args.seed})", unit=" records") as bar:
                if args.seed == "pipeline":
                    pull_run(system="crm", domain="customer", trigger="bench", progress=bar.update)
                else:
                    seed_hub_direct(n, bar.update)
            print(f"seeded the hub with {n} records in {time.monotonic() - t0:.0f} s", file=sys.stderr)

        timings = []
        for i in range(args.runs):
            t0 = time.monotonic()
            run = reconciliation_run(system="crm", domain="customer", trigger="bench")
            elapsed = time.monotonic() - t0
            assert run.status == "succeeded" and run.records == n, (run.status, run.records, run.errors)
            assert run.counts == {}, f"the hub and the CRM should be in step, found {run.counts}"
            timings.append(elapsed)
            print(f"run {i + 1}: {n} records in {elapsed:.1f} s ({n / elapsed:.0f} records/s)", file=sys.stderr)

        checkpoints = {n // 4: None, n // 2: None, n: None}
        seen = 0

        def sample(k: int) -> None:
            nonlocal seen
            seen += k
            for mark in checkpoints:
                if checkpoints[mark] is None and seen >= mark:
                    checkpoints[mark] = (tracemalloc.get_traced_memory()[1] / 2**20, rss_mib())

        tracemalloc.start()
        tracemalloc.reset_peak()
        reconciliation_run(system="crm", domain="customer", trigger="bench", progress=sample)
        tracemalloc.stop()
    finally:
        proc.kill()
        proc.wait(10)

    median = statistics.median(timings)
    result = {
        "records": n,
        "runs": len(timings),
        "seconds": [round(t, 1) for t in timings],
        "median_seconds": round(median, 1),
        "records_per_second": round(n / median),
        "peak_python_mib_at": {str(k): round(v[0], 1) for k, v in checkpoints.items() if v},
        "rss_mib_at": {str(k): round(v[1], 1) for k, v in checkpoints.items() if v},
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "machine": f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
