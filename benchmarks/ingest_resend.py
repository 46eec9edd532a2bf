"""A file sent again: one system's customer export ingested a second time, unchanged and with some rows updated.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mdm_bench REDIS_URL=redis://127.0.0.1:6379/10 \\
        .venv/bin/python benchmarks/ingest_resend.py --rows 12000 --updated 0.1 --runs 3 [--write-doc]

Systems send their whole export every night far more often than new records only. For each run:
1. Drop, create and migrate the database DATABASE_URL names, flush REDIS_URL's database; generate the CRM file of
   `ingest_customers.py` (ROWS customers) and a version of it in which UPDATED of the rows changed (a later
   updated_at, another phone number).
2. Ingest the file once with `--bulk` (untimed), and keep the database as a template.
3. Four cases, each from a fresh copy of that database (CREATE DATABASE … TEMPLATE) and an empty Redis database:
   the same file again, and the updated version, each with `ingest --bulk` and without (record by record), run as
   `manage.py ingest` in a child process and timed from its start to its end.

Reported per case: the median of the runs' wall seconds, records/s and the outcome counts (the same for both ways,
else the script stops: the two paths must leave the same result).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import random
import re
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402
import ingest_customers  # noqa: E402

ROOT = common.ROOT
_COUNTS_RE = re.compile(r"^\s+(created .*)$", re.MULTILINE)


def updated_version(path: Path, out: Path, share: float, seed: int = 11) -> int:
    """Write `path` again to `out` with `share` of its rows changed; return how many."""
    rng = random.Random(seed)
    changed = 0
    with open(path, newline="", encoding="utf-8") as fh, open(out, "w", newline="", encoding="utf-8") as w:
        reader = csv.DictReader(fh)
        writer = csv.DictWriter(w, fieldnames=reader.fieldnames)
        writer.writeheader()
        for row in reader:
            if rng.random() < share:
                at = dt.datetime.fromisoformat(row["updated_at"].replace("Z", "+00:00")) + dt.timedelta(days=1)
                row["updated_at"] = at.isoformat()
                row["phone"] = (row["phone"] or "+44 20 7946") + "1"
                changed += 1
            writer.writerow(row)
    return changed


def _admin(database_url: str):
    import psycopg

    return psycopg.connect(common.admin_url(database_url), autocommit=True, connect_timeout=10)


def template_keep(database_url: str) -> str:
    """Copy the benchmark database to `<name>_resend_base`; return that name."""
    from psycopg import sql

    name = urlsplit(database_url).path.lstrip("/")
    base = f"{name}_resend_base"
    with _admin(database_url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(base)))
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(base), sql.Identifier(name)))
    return base


def template_restore(database_url: str, base: str) -> None:
    from psycopg import sql

    name = urlsplit(database_url).path.lstrip("/")
    with _admin(database_url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(base)))
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        import redis

        redis.Redis.from_url(redis_url).flushdb()


def template_drop(database_url: str, base: str) -> None:
    from psycopg import sql

    with _admin(database_url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(base)))


def ingest(path: Path, bulk: bool) -> tuple[float, str]:
    cmd = [common.PYTHON, str(ROOT / "manage.py"), "ingest", "--system", "crm", "--domain", "customer"]
    cmd += ["--no-progress", *(["--bulk"] if bulk else []), str(path)]
    run = common.run_child(cmd)
    if run.returncode:
        sys.exit(f"{' '.join(cmd)} failed (exit {run.returncode}):\n{(run.stdout + run.stderr)[-4000:]}")
    found = _COUNTS_RE.search(run.stdout)
    return run.seconds, found.group(1) if found else "?"


CASES = (("unchanged", True), ("unchanged", False), ("updated", True), ("updated", False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=12_000, help="CRM customers in the file (default 12,000)")
    parser.add_argument("--updated", type=float, default=0.1, help="share of the rows changed (default 0.1)")
    parser.add_argument("--runs", type=int, default=3, help="runs; the median of each case is reported")
    parser.add_argument("--write-doc", action="store_true", help="write the results block in docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.rows < 100 or not 0 < args.updated < 1 or args.runs < 1:
        parser.error("--rows at least 100, --updated between 0 and 1, --runs at least 1")
    database_url = common.database_url_required()
    machine = common.machine_description(database_url)
    print(common.machine_line(machine), file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="mdm-resend-") as tmp:
        workdir = Path(tmp)
        files = ingest_customers.files_generate(round(args.rows / 0.6), workdir)
        crm = files["crm"]
        rows = files["crm_rows"]
        updated = workdir / "crm_updated.csv"
        changed = updated_version(crm, updated, args.updated)
        paths = {"unchanged": crm, "updated": updated}
        seconds: dict[tuple[str, bool], list[float]] = {case: [] for case in CASES}
        counts: dict[tuple[str, bool], str] = {}
        for run in range(args.runs):
            common.database_fresh(database_url)
            ingest(crm, bulk=True)
            base = template_keep(database_url)
            try:
                for kind, bulk in CASES:
                    template_restore(database_url, base)
                    wall, summary = ingest(paths[kind], bulk)
                    seconds[(kind, bulk)].append(wall)
                    counts.setdefault((kind, bulk), summary)
                    if summary != counts[(kind, bulk)] or summary != counts.get((kind, not bulk), summary):
                        sys.exit(f"{kind}: the outcomes differ ({summary!r} against {counts})")
                    way = "--bulk" if bulk else "record by record"
                    print(f"run {run + 1}: {kind} {way}: {wall:.1f} s ({rows / wall:.0f}/s) {summary}", file=sys.stderr)
            finally:
                template_drop(database_url, base)
    results = [
        {
            "file": kind,
            "way": "--bulk" if bulk else "record by record",
            "median_seconds": round(common.median(seconds[(kind, bulk)]), 2),
            "records_per_s": round(rows / common.median(seconds[(kind, bulk)])),
            "runs": [round(s, 2) for s in seconds[(kind, bulk)]],
            "outcomes": counts[(kind, bulk)],
        }
        for kind, bulk in CASES
    ]
    argv_line = " ".join(["benchmarks/ingest_resend.py", *(argv if argv is not None else sys.argv[1:])])
    if args.write_doc:
        lines = [
            f"    DATABASE_URL=… REDIS_URL=… .venv/bin/python {argv_line}",
            "",
            f"{common.machine_line(machine)}; {rows:,} CRM customers, {changed:,} of them changed in the updated file; "
            f"median of {args.runs} run(s).",
            "",
            "| file sent again | way | seconds | records/s | each run (s) | outcomes |",
            "|---|---|---|---|---|---|",
        ]
        for r in results:
            runs = " / ".join(f"{s:.1f}" for s in r["runs"])
            lines.append(
                f"| {r['file']} | {r['way']} | {r['median_seconds']:.1f} | {r['records_per_s']:,} | {runs} | "
                f"{r['outcomes']} |"
            )
        common.results_block_write("ingest_resend", "\n".join(lines))
    print(json.dumps({"rows": rows, "changed": changed, "runs": args.runs, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
