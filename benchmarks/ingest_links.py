"""Many records of one system linking to a few golden records, ingested record by record (the REST API's path).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mdm_bench REDIS_URL=redis://127.0.0.1:6379/10 \\
        .venv/bin/python benchmarks/ingest_links.py --records 1000 --customers 3 --runs 3 [--write-doc]

An ERP that keeps one account per billing address sends many records of the same client: each links to that
client's golden record, whose name the CRM owns, so each is an ownership conflict, and each link recomputes the
golden record over all its sources and refreshes the conflicts of all of them. For each run: a fresh database,
CUSTOMERS CRM customers ingested, then RECORDS ERP records (the clients' names as accounting writes them, their
web domains) in one `source_records_ingest` call, as one POST /api/v1/ingest/erp/customer/ of a list does, in this
process; timed around that call. Reported: the median seconds, records/s, the outcomes, and the queries the call
made (counted by an execute wrapper, which keeps no SQL text).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

ROOT = common.ROOT
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")

NAMES = ("Alpha", "Bravo", "Charlie", "Delta", "Echo", "Foxtrot", "Golf", "Hotel", "India", "Juliett")


def run_once(records: int, customers: int) -> tuple[float, Counter, int]:
    from django.db import connection, connections

    from canonical.audit import Channel, audit_context
    from canonical.domains import get_domain
    from canonical.services.ingest import envelope_parse, source_records_ingest

    connections.close_all()
    common.database_fresh(os.environ["DATABASE_URL"])
    spec = get_domain("customer")
    names = [NAMES[k % len(NAMES)] + (str(k // len(NAMES)) if k >= len(NAMES) else "") for k in range(customers)]

    def site(name: str) -> str:
        return f"https://www.acme-{name.lower()}.example.com"

    crm = [
        {"source_id": f"C{k}", "updated_at": "2025-01-01T00:00:00Z",
         "attributes": {"name": f"Acme {name} B.V.", "website": site(name), "country": "NL", "city": "Utrecht"}}
        for k, name in enumerate(names)
    ]  # fmt: skip
    erp = [
        {"source_id": f"E{i}", "updated_at": f"2025-02-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
         "attributes": {"name": f"ACME {names[i % customers].upper()} BV", "website": site(names[i % customers]),
                        "country": "NL", "city": "Utrecht", "address_line1": f"Postbus {i}"}}
        for i in range(records)
    ]  # fmt: skip
    with audit_context(actor="bench:ingest_links", channel=Channel.API, reason="benchmark"):
        source_records_ingest(system="crm", domain="customer", envelopes=[envelope_parse(r, spec=spec) for r in crm])
        envelopes = [envelope_parse(r, spec=spec) for r in erp]
        queries = [0]

        def counted(execute, sql, params, many, context):
            queries[0] += 1
            return execute(sql, params, many, context)

        started = time.perf_counter()
        with connection.execute_wrapper(counted):  # a count only: no SQL text kept
            results = source_records_ingest(system="erp", domain="customer", envelopes=envelopes)
        seconds = time.perf_counter() - started
    return seconds, Counter(r.outcome for r in results), queries[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1000, help="ERP records in the call (default 1,000)")
    parser.add_argument("--customers", type=int, default=3, help="CRM customers they link to (default 3)")
    parser.add_argument("--runs", type=int, default=3, help="runs; the median is reported")
    parser.add_argument("--write-doc", action="store_true", help="write the results block in docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.records < 1 or args.customers < 1 or args.runs < 1:
        parser.error("--records, --customers and --runs take 1 or more")
    database_url = common.database_url_required()
    import django

    django.setup()
    machine = common.machine_description(database_url)
    print(common.machine_line(machine), file=sys.stderr)
    seconds, outcomes, queries = [], Counter(), 0
    for run in range(args.runs):
        wall, outcomes, queries = run_once(args.records, args.customers)
        seconds.append(wall)
        print(f"run {run + 1}: {wall:.1f} s, {queries} queries, {dict(outcomes)}", file=sys.stderr)
    median = common.median(seconds)
    result = {
        "records": args.records,
        "customers": args.customers,
        "median_seconds": round(median, 2),
        "records_per_s": round(args.records / median, 1),
        "runs": [round(s, 2) for s in seconds],
        "outcomes": dict(outcomes),
        "queries": queries,
        "queries_per_record": round(queries / args.records, 1) if queries else None,
    }
    if args.write_doc:
        argv_line = " ".join(["benchmarks/ingest_links.py", *(argv if argv is not None else sys.argv[1:])])
        runs = " / ".join(f"{s:.1f}" for s in result["runs"])
        block = "\n".join(
            [
                f"    DATABASE_URL=… REDIS_URL=… .venv/bin/python {argv_line}",
                "",
                f"{common.machine_line(machine)}.",
                "",
                "| records | customers | seconds (median) | records/s | each run (s) | queries a record | outcomes |",
                "|---|---|---|---|---|---|---|",
                f"| {args.records:,} | {args.customers} | {median:.1f} | {result['records_per_s']} | {runs} | "
                f"{result['queries_per_record']} | {result['outcomes']} |",
            ]
        )
        common.results_block_write("ingest_links", block)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
