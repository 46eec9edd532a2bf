"""Latency of matching one new record against 1,000,000 golden customers on PostgreSQL.

    DATABASE_URL=postgres://…/mdm_bench .venv/bin/python benchmarks/match_latency.py [--golden 1000000] [--queries 300]

1. Fixture: N golden customers, each with one source record (system `bench`) and its MatchKey rows as the
   configured matcher computes them, loaded with COPY (a benchmark fixture, not the pipeline). Loaded once:
   a second run finds them and goes straight to measuring (`--reload` to start over).
2. Measure: `matcher.match()` for new records — half of them noisy duplicates of loaded customers (typos,
   legal-form variants, phone formats), half unrelated — timing each call (the blocking-key lookup, fetching
   and scoring candidates, the decision). Prints p50/p95/p99 in milliseconds, this process's CPU per call
   (p50/p95: Python and the driver, not the database), SQL statements per call, and how many duplicates linked.
Use a database of its own: it adds N customers to it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")

SYLLABLES = (
    "ka ko ri ra vo va len lor mar mer tis tan dor del sol sen bra bro cal cor fin fel gar gor hal hel "
    "jor kor lin lum nor nov ost pal pel quin ros sar sil tor tul var vel wen wil zan zor ax ex ix on um ar"
).split()
LINES = (
    "Technologies Logistics Consulting Engineering Manufacturing Pharma Energy Capital Partners Systems "
    "Software Analytics Foods Textiles Chemicals Robotics Media Retail Insurance Motors Aerospace Mining"
).split()
FORMS = {"DE": ["GmbH", "AG"], "GB": ["Ltd", "PLC"], "FR": ["SA", "SAS"], "NL": ["B.V."], "US": ["Inc.", "LLC"]}
CITIES = {
    "DE": [("Berlin", "10", "30"), ("München", "80", "89"), ("Hamburg", "20", "40")],
    "GB": [("London", "EC1", "20"), ("Leeds", "LS1", "113")],
    "FR": [("Paris", "75", "1"), ("Lyon", "69", "4")],
    "NL": [("Amsterdam", "10", "20")],
    "US": [("New York", "100", "212"), ("Austin", "787", "512"), ("Seattle", "981", "206")],
}
TLD = {"DE": "de", "GB": "co.uk", "FR": "fr", "NL": "nl", "US": "com"}
CC = {"DE": "49", "GB": "44", "FR": "33", "NL": "31", "US": "1"}


def company(rng: random.Random, i: int) -> dict:
    country = rng.choice(list(CITIES))
    stem = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
    line = rng.choice(LINES)
    city, postal, area = rng.choice(CITIES[country])
    number = f"{rng.randrange(10**6, 10**7)}"
    return {
        "name": f"{stem} {line} {rng.choice(FORMS[country])}",
        "website": f"https://www.{stem.lower()}{line.lower()}{i}.{TLD[country]}",
        "phone": f"+{CC[country]} {area} {number}",
        "city": city,
        "postal_code": postal + str(rng.randrange(100, 999)) if country != "GB" else f"{postal} {rng.randint(1, 9)}AB",
        "country": country,
        "industry": rng.choice(["Technology", "Finance", "Retail"]),
    }


def noisy(rng: random.Random, c: dict) -> dict:
    name = c["name"]
    if rng.random() < 0.5:
        name = name.rsplit(" ", 1)[0]  # legal form dropped
    if rng.random() < 0.4:
        i = rng.randrange(1, len(name) - 1)
        name = name[:i] + name[i + 1 :]  # a typo
    out = {"name": name.upper() if rng.random() < 0.3 else name, "country": c["country"]}
    if rng.random() < 0.6:
        out["website"] = c["website"].replace("https://www.", "http://")
    if rng.random() < 0.6:
        out["phone"] = c["phone"].replace(" ", "")
    if rng.random() < 0.5:
        out["city"] = c["city"]
    return out


def load(n: int, seed: int, start_at: int = 0) -> None:
    """Load customers start_at..n-1 (the same stream of companies whatever start_at is), one commit per chunk."""
    from django.db import connection, transaction
    from tqdm import tqdm

    from canonical.domains import get_domain
    from canonical.matching.base import get_matcher
    from canonical.models import Customer, System
    from canonical.validation import validate_attributes

    spec = get_domain("customer")
    matcher = get_matcher()
    System.objects.get_or_create(code="bench", defaults={"name": "benchmark fixture", "kind": "file"})
    rng = random.Random(seed)
    for i in range(start_at):
        company(rng, i)  # replay the stream up to where an earlier load stopped
    now = dt.datetime.now(dt.UTC)
    with connection.cursor() as cur:
        cur.execute("SELECT COALESCE(MAX(id), 0) FROM canonical_sourcerecord")
        next_id = cur.fetchone()[0] + 1
    chunk = 50_000
    golden_cols = [f.column for f in Customer._meta.concrete_fields]
    bar = tqdm(total=n, initial=start_at, desc="load golden+source+matchkey (COPY)", unit="rec", file=sys.stderr)
    for start in range(start_at, n, chunk):
        with transaction.atomic():  # one commit per chunk: an interrupted load resumes where it stopped
            raw = connection.cursor().connection
            golden_rows, source_rows, key_rows = [], [], []
            for i in range(start, min(n, start + chunk)):
                attrs = company(rng, i)
                values, _ = validate_attributes(spec, attrs, system="bench")
                gid = uuid.uuid4()
                row = {f.column: None for f in Customer._meta.concrete_fields}
                row.update(id=gid, status="active", version=1, provenance="{}", created_at=now, updated_at=now)
                row.update({k: v for k, v in values.items() if k in row})
                golden_rows.append(tuple(row[c] for c in golden_cols))
                sid = next_id + i - start_at
                blob = json.dumps(values)
                source_rows.append(
                    (
                        sid,
                        "bench",
                        "customer",
                        f"B{i}",
                        json.dumps(attrs),
                        blob,
                        now,
                        False,
                        "x" * 64,
                        "applied",
                        "{}",
                        "{}",
                        gid,
                        now,
                        now,
                    )
                )
                for key_type, key_value in matcher.keys(domain="customer", values=values):
                    key_rows.append(("customer", key_type, key_value, gid, sid))
            with raw.cursor() as cur:
                with cur.copy(f"COPY canonical_customer ({', '.join(golden_cols)}) FROM STDIN") as copy:
                    for r in golden_rows:
                        copy.write_row(r)
                with cur.copy(
                    'COPY canonical_sourcerecord (id, system_id, domain, source_id, attributes, "values", updated_at, '
                    "deleted, content_hash, status, errors, conflicts, golden_id, received_at, processed_at) FROM STDIN"
                ) as copy:
                    for r in source_rows:
                        copy.write_row(r)
                with cur.copy(
                    "COPY canonical_matchkey (domain, key_type, key_value, golden_id, source_record_id) FROM STDIN"
                ) as copy:
                    for r in key_rows:
                        copy.write_row(r)
            with connection.cursor() as cur:
                cur.execute(
                    "SELECT setval(pg_get_serial_sequence('canonical_sourcerecord', 'id'), "
                    "(SELECT MAX(id) FROM canonical_sourcerecord))"
                )
        bar.update(len(golden_rows))
    bar.close()
    with connection.cursor() as cur:
        cur.execute("ANALYZE canonical_customer; ANALYZE canonical_sourcerecord; ANALYZE canonical_matchkey;")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--golden", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--reload", action="store_true", help="delete the bench fixture and load it again")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="then profile as many other queries (CPU time): top N functions",
    )
    args = parser.parse_args(argv)

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from canonical.matching.base import get_matcher
    from canonical.models import SourceRecord

    if connection.vendor != "postgresql":
        print("this benchmark needs PostgreSQL: set DATABASE_URL=postgres://…", file=sys.stderr)
        return 2
    have = SourceRecord.objects.filter(system_id="bench", domain="customer").count()
    if args.reload and have:
        print("--reload: drop the benchmark database and run again (rows are not deleted one by one)", file=sys.stderr)
        return 2
    if have < args.golden:
        started = time.perf_counter()
        load(args.golden, args.seed, start_at=have)
        print(f"loaded {args.golden} golden customers in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    matcher = get_matcher()
    rng = random.Random(args.seed)  # the same stream as the load: the first companies are the loaded ones
    loaded = [company(rng, i) for i in range(min(args.golden, 20_000))]
    probe = random.Random(args.seed + 1)
    queries = []
    for q in range(args.queries):
        if q % 2 == 0:
            queries.append(("duplicate", noisy(probe, probe.choice(loaded))))
        else:
            queries.append(("new", company(probe, 10_000_000 + q)))
    for _, values in queries[:20]:  # warm-up: connections, caches, the population count
        matcher.match(domain="customer", values=values)
    timings, cpu, linked, created = [], [], 0, 0
    statements = [0]

    def count(execute, sql, params, many, context):
        statements[0] += 1
        return execute(sql, params, many, context)

    for kind, values in queries:
        started, started_cpu = time.perf_counter(), time.process_time()
        with connection.execute_wrapper(count):
            outcome = matcher.match(domain="customer", values=values)
        timings.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        linked += kind == "duplicate" and outcome.decision == "link"
        created += kind == "new" and outcome.decision == "new"
    timings.sort()
    pct = statistics.quantiles(timings, n=100)
    result = {
        "golden_customers": SourceRecord.objects.filter(domain="customer").count(),
        "queries": len(timings),
        "p50_ms": round(statistics.median(timings), 1),
        "p95_ms": round(pct[94], 1),
        "p99_ms": round(pct[98], 1),
        "max_ms": round(timings[-1], 1),
        # this process's CPU (matching in Python, the driver; not the database's work): robust to a busy machine
        "cpu_p50_ms": round(statistics.median(cpu), 2),
        "cpu_p95_ms": round(statistics.quantiles(cpu, n=100)[94], 2),
        "sql_per_match": round(statements[0] / len(queries), 2),
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
        "duplicates_linked": f"{linked}/{len(queries) // 2}",
        "new_records_new": f"{created}/{len(queries) - len(queries) // 2}",
        "matcher": settings.MDM_MATCHER,
    }
    print(json.dumps(result))
    if args.profile:
        import cProfile
        import pstats

        # other queries of the same kinds (the measured ones' candidates are memoised now), CPU time
        probe = random.Random(args.seed + 2)
        others = [
            noisy(probe, probe.choice(loaded)) if q % 2 == 0 else company(probe, 20_000_000 + q)
            for q in range(args.queries)
        ]
        prof = cProfile.Profile(time.process_time)
        prof.enable()
        for values in others:
            matcher.match(domain="customer", values=values)
        prof.disable()
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
