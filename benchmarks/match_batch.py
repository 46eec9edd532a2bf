"""CPU per record of the bulk path's matching (canonical/matching/batch.py), in process, without writing.

    DATABASE_URL=postgres://…/mdm_x .venv/bin/python benchmarks/match_batch.py [--entities 2400] [--runs 3]

A labelled customer file (fixtures/labelled/generate.py: ~2.1 records per entity, duplicates with typos,
legal-form variants, sister companies) is validated as ingest validates it, then matched the way the bulk
ingest path matches: windows of 128 records prefetched together, each record decided by `BatchMatch.match`,
a record decided "new" added to the in-memory overlay (so later records see it as a candidate), nothing
written. Each run starts cold (a new BatchMatch, the matcher's in-process memos and the normalisers' caches
cleared). Prints CPU ms per record (process time, so the database's own work is not counted; the client's
is) for each run and their median, the decisions, and a digest of every outcome in full (decision, golden id,
reason, every candidate's score, reason and per-field explanation; from one more, untimed, run) so two
versions of the matcher can be compared for identical results. Use a database without customers (its rows would be candidates too).
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import dataclasses
import hashlib
import io
import json
import os
import pstats
import statistics
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")

WINDOW = 128  # as canonical/services/bulk.py reads candidates


def labelled_rows(entities: int, seed: int) -> list[dict]:
    sys.path.insert(0, str(ROOT / "fixtures" / "labelled"))
    import generate  # fixtures/labelled/generate.py

    _, rows = generate.generate("customer", entities, seed)
    return rows


def prepared_values(rows: list[dict]) -> list[dict]:
    from canonical.domains import get_domain
    from canonical.matching.base import matcher_values
    from canonical.validation import validate_attributes

    spec = get_domain("customer")
    out = []
    for row in rows:
        attrs = {k: v for k, v in row.items() if spec.get(k) is not None and v not in ("", None)}
        values, errors = validate_attributes(spec, attrs, system=row.get("system") or "crm")
        if not errors:
            out.append(matcher_values(spec, values))
    return out


def clear_caches() -> None:
    """Every in-process memo the matcher keeps, so each run starts cold."""
    from canonical.matching import fuzzy, normalize

    fuzzy.prepared_cache.clear()
    fuzzy._population_memo.clear()
    fuzzy._common_key_memo.clear()
    clear = getattr(normalize, "caches_clear", None)
    if clear is not None:
        clear()
    else:
        for name in dir(normalize):
            fn = getattr(normalize, name)
            if callable(getattr(fn, "cache_clear", None)) and name != "_extractor":
                fn.cache_clear()


def run_once(
    values_list: list[dict], *, keep: bool = False, profile: cProfile.Profile | None = None
) -> tuple[float, float, Counter, list]:
    """One cold run: CPU and wall seconds, the decisions, and the outcomes if `keep` (kept only for the digest:
    holding thousands of outcomes makes the garbage collector's passes slower than the bulk path's are)."""
    from canonical.matching.batch import BatchMatch
    from canonical.matching.fuzzy import FuzzyMatcher

    clear_caches()
    batch = BatchMatch(domain="customer", matcher=FuzzyMatcher())
    outcomes = []
    decisions: Counter = Counter()
    temp = -1
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profile is not None:
        profile.enable()
    for start in range(0, len(values_list), WINDOW):
        window = values_list[start : start + WINDOW]
        batch.prefetch(window)
        for values in window:
            outcome, keys = batch.match(values=values)
            decisions[outcome.decision] += 1
            if keep:
                outcomes.append(outcome)
            if outcome.decision == "new":
                golden = uuid.UUID(int=-temp)  # deterministic, so two runs' outcomes compare
                batch.overlay_add(temp_id=temp, golden_id=golden, values=values, keys=keys)
                temp -= 1
    if profile is not None:
        profile.disable()
    return time.process_time() - cpu0, time.perf_counter() - wall0, decisions, outcomes


def digest(outcomes: list) -> str:
    """Everything an outcome exposes, candidates' explanations included."""
    h = hashlib.sha256()
    for o in outcomes:
        cands = [
            (str(c.golden_id), c.score, c.reason, [dataclasses.astuple(f) for f in c.comparisons]) for c in o.candidates
        ]
        h.update(repr((o.decision, str(o.golden_id), o.reason, cands)).encode())
    return h.hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=2400, help="labelled entities (about 2.1 records each)")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print the top N functions of one run")
    parser.add_argument(
        "--csv",
        help="match this CSV of customer rows instead (canonical column names, as fixtures/labelled or the CRM "
        "export benchmarks/ingest_customers.py generates; system `crm` unless a `system` column says)",
    )
    args = parser.parse_args(argv)

    import django

    django.setup()
    from canonical.models import SourceRecord

    if args.csv:
        with open(args.csv, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    else:
        rows = labelled_rows(args.entities, args.seed)
    values_list = prepared_values(rows)
    existing = SourceRecord.objects.filter(domain="customer").count()
    runs = []
    for _ in range(args.runs):
        cpu, wall, decisions, _ = run_once(values_list)
        runs.append({"cpu_ms_per_record": cpu * 1000 / len(values_list), "wall_s": wall})
    *_, outcomes = run_once(values_list, keep=True)
    outcomes_digest = digest(outcomes)
    del outcomes
    if args.profile:
        prof = cProfile.Profile()
        run_once(values_list, profile=prof)
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(args.profile)
        print(out.getvalue(), file=sys.stderr)
    result = {
        "records": len(values_list),
        "customers_in_database": existing,
        "runs_cpu_ms_per_record": [round(r["cpu_ms_per_record"], 3) for r in runs],
        "median_cpu_ms_per_record": round(statistics.median(r["cpu_ms_per_record"] for r in runs), 3),
        "median_wall_s": round(statistics.median(r["wall_s"] for r in runs), 2),
        "decisions": dict(decisions),
        "outcomes_digest": outcomes_digest,
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
