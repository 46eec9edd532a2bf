"""End-to-end deduplication of N customer source records: the hub's pipeline against Splink, same file, same run.

    DATABASE_URL=postgres://… .venv/bin/python benchmarks/dedup_100k.py [--records 100000]

The file comes from fixtures/labelled/generate.py (customers, its noise model). Ours: every record through the
real ingest pipeline — by default the bulk path (`ingest --bulk`, which leaves the state record-by-record ingest
leaves) with each system's rows as one export, as the CLI ingests one file per system — validation, matching against the MatchKey index, survivorship, golden record, history
row, outbox event, cross-reference, match keys — in one transaction rolled back at the end (evaluate_matching's
evaluation). Splink: its documented DuckDB dedupe workflow (train, predict, cluster). Prints both wall-clock
times, records per second, the ratio, and both F1 scores. Peak memory of this process is printed after ours (ours_peak_rss_mb: the
file and its labels are held in memory for the evaluation) and at the end (peak_rss_mb, Splink and DuckDB included).
Core-seconds say how much of the machine each side used: ours is this process's CPU plus the CPU of the
PostgreSQL backend serving it (read from /proc: the database must run on this machine), Splink's is this
process's CPU while it ran (DuckDB's threads included); `*_cores` is that divided by the wall time.
`--committed` runs ours as `manage.py ingest --bulk` does instead, committed, in batches of
MDM_PIPELINE_BATCH_SIZE, on PostgreSQL with the matcher in a second process (canonical/services/pipeline.py; the
same decisions): it drops, creates and migrates the database DATABASE_URL names first (what it writes stays); its
core-seconds then count the writer, the matcher process and every PostgreSQL process over the run.
`--breakdown` also measures where ours' time goes (benchmarks/_breakdown.py: the database waits by statement, the
matcher's feature memo by tier, the garbage collector); `--no-splink` runs ours only.
"""

from __future__ import annotations

import argparse
import json
import resource as rlimit
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "fixtures" / "labelled"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="about this many source records")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--file-order",
        action="store_true",
        help="ours in the file's interleaved order (default: one export per system, as the CLI ingests them)",
    )
    parser.add_argument("--record-by-record", action="store_true", help="ours without the bulk path")
    parser.add_argument(
        "--committed",
        action="store_true",
        help="ours as `manage.py ingest --bulk` runs it, committed (on PostgreSQL with the matcher in a second "
        "process: canonical/services/pipeline.py), instead of the evaluation's one rolled-back transaction; drops, "
        "creates and migrates the database DATABASE_URL names first (what it writes stays)",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also measure where ours' time goes (benchmarks/_breakdown.py: database waits by statement, the "
        "feature memo's tiers, the garbage collector), printed to stderr and in the JSON; the instrumentation "
        "costs some CPU, so time a run without it",
    )
    parser.add_argument("--no-splink", action="store_true", help="ours only (with --breakdown, say)")
    parser.add_argument(
        "--csv",
        type=Path,
        help="the generated file: made here if missing, reused if there (the generator is deterministic for "
        "--records and --seed; a file made with others is refused)",
    )
    args = parser.parse_args(argv)

    import _breakdown
    import _common as common
    import django
    import splink_side_by_side as sbs

    django.setup()
    import generate

    entities = max(1, round(args.records / 2.07))  # the generator's mean of 2.07 records per entity
    path = args.csv or Path(tempfile.mkdtemp(prefix="dedup-")) / "customers.csv"
    made_with = path.with_name(path.name + ".args")  # what the file was generated with, beside it
    wanted = f"customer entities={entities} seed={args.seed}"
    if path.exists() and made_with.exists() and made_with.read_text() == wanted:
        print(f"reusing {path} ({wanted})", file=sys.stderr)
    elif path.exists():
        parser.error(f"{path} exists but was not generated with {wanted}: remove it or pass another --csv")
    else:
        generate.main(
            ["--domain", "customer", "--entities", str(entities), "--seed", str(args.seed), "--out", str(path)]
        )
        made_with.write_text(wanted)

    from django.conf import settings

    # records per ingest call as `manage.py ingest` takes them (a transaction each there; here a savepoint each, in
    # the evaluation's one transaction): MDM_BULK_BATCH_SIZE with --bulk, MDM_INGEST_BATCH_SIZE record by record
    batch_size = settings.MDM_INGEST_BATCH_SIZE if args.record_by_record else settings.MDM_BULK_BATCH_SIZE
    if args.committed:
        from canonical.services.pipeline import pipeline_usable

        batch_size = settings.MDM_PIPELINE_BATCH_SIZE if pipeline_usable() else settings.MDM_BULK_BATCH_SIZE
    from django.db import OperationalError, connection

    if args.committed:  # what it writes stays: a fresh database (dropped, created and migrated), as its help says
        print("recreating and migrating the database DATABASE_URL names …", file=sys.stderr)
        common.database_fresh(common.database_url_required())
    # PostgreSQL's side of ours: the CPU of the backend serving this process (same machine), read from /proc
    try:
        connection.ensure_connection()
    except OperationalError as exc:
        parser.error(
            f"cannot use the database DATABASE_URL names ({str(exc).strip()}): create it and run "
            "`manage.py migrate` with the same DATABASE_URL (or pass --committed, which makes a fresh one)"
        )
    backend = connection.connection.info.backend_pid if connection.vendor == "postgresql" else None
    db_cpu = common.process_cpu_seconds(backend) if backend else None
    server_cpu = common.postgres_cpu_seconds() if args.committed else None
    started = time.perf_counter()
    with _breakdown.breakdown() if args.breakdown else nullcontext() as where:
        if args.committed:
            ours = sbs.run_ours_committed("customer", path, batch_size=batch_size)
        else:
            ours = sbs.run_ours(
                "customer", path, bulk=not args.record_by_record, per_system=not args.file_order, batch_size=batch_size
            )
    ours_seconds = time.perf_counter() - started
    if args.committed:  # backends come and go (the matcher's): every PostgreSQL process's CPU over the run
        server_after = common.postgres_cpu_seconds()
        ours_db_cpu = round(server_after - server_cpu, 1) if server_cpu is not None and server_after else None
    else:
        same_backend = connection.connection is not None and connection.connection.info.backend_pid == backend
        db_after = common.process_cpu_seconds(backend) if backend and same_backend else None
        ours_db_cpu = round(db_after - db_cpu, 1) if db_after is not None and db_cpu is not None else None
    # CPU seconds on any core: this process (and its matcher process) plus the PostgreSQL backends serving them
    python_cpu = ours["cpu_seconds"] + ours.get("matcher_cpu_seconds", 0)
    ours_core = python_cpu + ours_db_cpu if ours_db_cpu is not None else None
    ours_peak = rlimit.getrusage(rlimit.RUSAGE_SELF).ru_maxrss / 1024  # ours ran first: the peak so far is ours
    if where is not None:
        print("\n".join(_breakdown.report_lines(where)), file=sys.stderr)
    if args.no_splink:
        theirs, splink_seconds, splink_cpu = {"f1": None}, None, None
    else:
        started, used = time.perf_counter(), rlimit.getrusage(rlimit.RUSAGE_SELF)
        theirs = sbs.run_splink("customer", path)
        splink_seconds = time.perf_counter() - started
        after = rlimit.getrusage(rlimit.RUSAGE_SELF)  # this process's threads: DuckDB's among them
        splink_cpu = (after.ru_utime - used.ru_utime) + (after.ru_stime - used.ru_stime)
    result = {
        "records": ours["records"],
        "ours_seconds": round(ours_seconds, 1),
        "ours_records_per_s": round(ours["records"] / ours_seconds, 1),
        "ours_f1": ours["f1"],
        "ours_path": ours["mode"] + (", file order" if args.file_order else ", one export per system"),
        "ours_cpu_seconds": ours["cpu_seconds"],
        **({"ours_matcher_cpu_seconds": ours["matcher_cpu_seconds"]} if "matcher_cpu_seconds" in ours else {}),
        **({"ours_matcher_peak_rss_mb": ours["matcher_peak_rss_mb"]} if "matcher_peak_rss_mb" in ours else {}),
        "ours_review_pairs": ours["review_tasks"],
        "ours_db_cpu_seconds": ours_db_cpu,
        "ours_core_seconds": round(ours_core, 1) if ours_core is not None else None,
        "ours_batch_size": batch_size,
        "splink_seconds": round(splink_seconds, 1) if splink_seconds is not None else None,
        "splink_records_per_s": round(ours["records"] / splink_seconds, 1) if splink_seconds is not None else None,
        "splink_f1": theirs["f1"],
        "splink_core_seconds": round(splink_cpu, 1) if splink_cpu is not None else None,
        "splink_cores": round(splink_cpu / splink_seconds, 2) if splink_seconds else None,
        "ours_cores": round(ours_core / ours_seconds, 2) if ours_core is not None else None,
        "ratio_ours_to_splink": round(ours_seconds / splink_seconds, 1) if splink_seconds is not None else None,
        "ours_peak_rss_mb": round(ours_peak, 1),
        "peak_rss_mb": round(rlimit.getrusage(rlimit.RUSAGE_SELF).ru_maxrss / 1024, 1),
        **({"breakdown": where, "ours_instrumented": True} if where is not None else {}),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
