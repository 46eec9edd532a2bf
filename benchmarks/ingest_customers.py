"""Bulk ingest of customer source records from CSV into PostgreSQL, through the real CLI.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mdm_bench REDIS_URL=redis://127.0.0.1:6379/10 \\
        .venv/bin/python benchmarks/ingest_customers.py --rows 100000 --runs 3 [--smaller 10000,25000] [--write-doc]

For each size and run:
1. Generate ROWS customer rows as two CSV exports of one firm's customers: the CRM's (60 %: name, industry,
   segment, website, phone, city, country, account owner) and the ERP's (40 %: billing address, phone,
   names as accounting keys them; half of its rows are the same companies as CRM rows — same web domain,
   the name written another way — the other half ERP-only accounts). About 0.2 % of rows carry an invalid
   country code (kept as data-quality exceptions, as the pipeline does with bad data).
2. Drop, create and migrate the database DATABASE_URL names (untimed), flush REDIS_URL's db (the matcher
   caches counts there).
3. Run `manage.py ingest --system crm --domain customer crm.csv`, then the same for erp.csv, each as a child
   process measured alone: wall time (process start, Django setup, the file's structural check pass and
   the ingest), peak RSS (wait4's ru_maxrss) and CPU time of the command. PostgreSQL's own memory and CPU
   are not in those figures.
4. Count what was written: golden records, source records, cross-references, history rows, outbox events.

Records/s = rows / (crm wall + erp wall). With --runs R, each size is run R times and the median run (by
records/s) is reported. --smaller adds smaller sizes to show how time and memory grow with the data.

--profile (with --profile-rows, default 2,000) runs the same files in-process instead: once counting the
queries per record with CaptureQueriesContext (grouped by statement and table, with their share of the
time), once under cProfile (top 20 functions, and the time per pipeline stage), so one can see where the
time per record goes. It runs the bulk path in one process (MDM_BULK_PIPELINE=false), the matcher included, and
the server's CPU is every PostgreSQL process's.

The load average is sampled once a second during the timed part; the machine is named in the output.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import random
import re
import string
import sys
import tempfile
import time
from collections import defaultdict, deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

ROOT = common.ROOT
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")

# --- data ----------------------------------------------------------------------------------------------------

SYLLABLES = (
    "ka ko ri ra vo va len lor mar mer tis tan dor del sol sen bra bro cal cor fin fel gar gor hal hel jor kor "
    "lin lum nor nov ost pal pel quin ros sar sil tor tul var vel wen wil zan zor ax ex ix on um ar be bi da de "
    "ge gi lu mi mo na ne pi po sa se ta te ti to vi wa ze zi"
).split()
SURNAMES = (
    "Müller Schmidt Weber Fischer Wagner Becker Hoffmann Smith Jones Taylor Brown Wilson Evans Martin Bernard "
    "Dubois Moreau Laurent Jansen Visser Bakker Rossi Russo Ferrari Garcia Lopez Martinez Andersson Johansson "
    "Peeters Janssens Keller Meier Huber Baker Carter Morgan Hughes Clarke"
).split()
WORDS = (
    "Technologies Logistics Consulting Engineering Manufacturing Pharma Energy Capital Partners Systems Software "
    "Analytics Foods Textiles Chemicals Robotics Media Retail Insurance Motors Aerospace Mining Solutions Group "
    "Holding Industries Services Labs Digital Networks Healthcare Construction Trading Ventures Design Studios "
    "Automation Materials Instruments Biotech Finance Marine Packaging Electronics Hospitality Security Advisory"
).split()
INDUSTRIES = (
    "Technology",
    "Financial Services",
    "Manufacturing",
    "Retail",
    "Healthcare",
    "Energy",
    "Public Sector",
    "Media",
    "Logistics",
    "Professional Services",
)
SEGMENTS = ("Enterprise", "Mid-Market", "SMB", "Strategic")
STREETS = {
    "DE": ("Hauptstraße", "Bahnhofstraße", "Gartenweg", "Friedrichstraße", "Schillerstraße", "Lindenallee"),
    "GB": ("High Street", "Station Road", "Church Lane", "Victoria Road", "King Street", "Mill Lane"),
    "FR": ("rue de la Paix", "avenue Victor Hugo", "boulevard Haussmann", "rue du Moulin", "place de la Gare"),
    "NL": ("Kerkstraat", "Dorpsstraat", "Stationsweg", "Molenweg", "Prinsengracht"),
    "US": ("Main Street", "Oak Avenue", "Market Street", "Broadway", "Maple Drive", "5th Avenue"),
    "ES": ("Calle Mayor", "Avenida de la Constitución", "Calle Real", "Paseo de Gracia"),
    "IT": ("Via Roma", "Corso Italia", "Via Garibaldi", "Via Dante", "Piazza del Duomo"),
    "CH": ("Bahnhofstrasse", "Seestrasse", "Dorfstrasse", "Kirchgasse"),
}
CITIES = {  # city, region, postal code format (# = digit, A = letter), phone area code
    "DE": [("Berlin", "Berlin", "1####", "30"), ("München", "Bayern", "8####", "89"), ("Hamburg", "", "2####", "40")],
    "GB": [("London", "", "EC# #AA", "20"), ("Manchester", "", "M## #AA", "161"), ("Leeds", "", "LS# #AA", "113")],
    "FR": [("Paris", "Île-de-France", "75###", "1"), ("Lyon", "Auvergne-Rhône-Alpes", "69###", "4")],
    "NL": [("Amsterdam", "Noord-Holland", "10## AA", "20"), ("Rotterdam", "Zuid-Holland", "30## AA", "10")],
    "US": [("New York", "NY", "100##", "212"), ("Austin", "TX", "787##", "512"), ("Seattle", "WA", "981##", "206")],
    "ES": [("Madrid", "Madrid", "28###", "91"), ("Barcelona", "Cataluña", "08###", "93")],
    "IT": [("Milano", "Lombardia", "201##", "02"), ("Roma", "Lazio", "001##", "06")],
    "CH": [("Zürich", "ZH", "80##", "44"), ("Genève", "GE", "12##", "22")],
}
COUNTRY_WEIGHTS = {"DE": 22, "GB": 20, "US": 25, "FR": 10, "NL": 8, "ES": 5, "IT": 5, "CH": 5}
FORMS = {
    "DE": ("GmbH", "AG", "GmbH & Co. KG"),
    "GB": ("Ltd", "PLC", "LLP"),
    "FR": ("SA", "SAS", "SARL"),
    "NL": ("B.V.", "N.V."),
    "US": ("Inc.", "LLC", "Corp."),
    "ES": ("S.L.", "S.A."),
    "IT": ("S.p.A.", "S.r.l."),
    "CH": ("AG", "GmbH", "SA"),
}
TLD = {"DE": "de", "GB": "co.uk", "FR": "fr", "NL": "nl", "US": "com", "ES": "es", "IT": "it", "CH": "ch"}
CC = {"DE": "49", "GB": "44", "FR": "33", "NL": "31", "US": "1", "ES": "34", "IT": "39", "CH": "41"}
CRM_COLUMNS = (
    "source_id",
    "updated_at",
    "name",
    "industry",
    "segment",
    "website",
    "phone",
    "city",
    "country",
    "account_owner_email",
)
ERP_COLUMNS = (
    "source_id",
    "updated_at",
    "name",
    "website",
    "phone",
    "address_line1",
    "address_line2",
    "city",
    "postal_code",
    "region",
    "country",
)
BAD_COUNTRY_RATE = 0.002
OWNERS = [f"{first}.{last}@example-firm.com" for first in ("anna", "ben", "chloe", "dev", "eva") for last in "abcd"]


def _fill(rng: random.Random, pattern: str) -> str:
    return "".join(
        str(rng.randrange(10)) if c == "#" else rng.choice(string.ascii_uppercase) if c == "A" else c for c in pattern
    )


def firm(rng: random.Random, i: int) -> dict:
    """One company as the firm knows it: a name, its web domain, where it sits, its switchboard."""
    country = rng.choices(list(COUNTRY_WEIGHTS), weights=list(COUNTRY_WEIGHTS.values()))[0]
    stem = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()
    style = rng.random()
    if style < 0.55:
        core = f"{stem} {rng.choice(WORDS)}"
    elif style < 0.75:
        core = stem
    elif style < 0.9:
        core = f"{rng.choice(SURNAMES)} & {rng.choice(SURNAMES)}"
    else:
        core = f"{stem} {rng.choice(WORDS)} {rng.choice(WORDS)}"
    city, region, postal, area = rng.choice(CITIES[country])
    slug = re.sub(r"[^a-z0-9]", "", core.lower().replace("&", "and").replace("ü", "ue"))[:24]
    return {
        "i": i,
        "country": country,
        "name": f"{core} {rng.choice(FORMS[country])}",
        "domain": f"{slug}{i % 997}.{TLD[country]}",  # a suffix keeps generated web domains apart
        "phone": f"+{CC[country]} {area} {rng.randrange(100_000, 9_999_999)}",
        "city": city,
        "region": region,
        "postal_code": _fill(rng, postal),
        "street": f"{rng.choice(STREETS[country])} {rng.randint(1, 240)}",
        "industry": rng.choice(INDUSTRIES),
        "segment": rng.choice(SEGMENTS),
    }


def _updated(rng: random.Random) -> str:
    moment = dt.datetime(2025, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=rng.randrange(365 * 86400))
    return moment.isoformat().replace("+00:00", "Z")


def crm_row(rng: random.Random, f: dict) -> dict:
    sid = "0015g" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(13))
    website = rng.choice((f"https://www.{f['domain']}", f"www.{f['domain']}", f"https://{f['domain']}/"))
    return {
        "source_id": sid,
        "updated_at": _updated(rng),
        "name": f["name"],
        "industry": f["industry"],
        "segment": f["segment"],
        "website": website if rng.random() < 0.92 else "",
        "phone": f["phone"] if rng.random() < 0.8 else "",
        "city": f["city"],
        "country": "XX" if rng.random() < BAD_COUNTRY_RATE else f["country"],
        "account_owner_email": rng.choice(OWNERS),
    }


def erp_row(rng: random.Random, f: dict, n: int) -> dict:
    name = f["name"]
    variant = rng.random()
    if variant < 0.35:
        name = name.upper()  # accounting's keying
    elif variant < 0.5:
        name = name.replace(" & ", " and ")
    elif variant < 0.6:
        name = name.rsplit(" ", 1)[0]  # legal form left off
    phone = f["phone"].replace(" ", "") if rng.random() < 0.5 else f["phone"]
    return {
        "source_id": f"C{n:07d}",
        "updated_at": _updated(rng),
        "name": name,
        "website": f"http://{f['domain']}" if rng.random() < 0.75 else "",
        "phone": phone if rng.random() < 0.7 else "",
        "address_line1": f["street"],
        "address_line2": rng.choice(("", "", "", "Floor 3", "Building B", "Suite 200")),
        "city": f["city"],
        "postal_code": f["postal_code"],
        "region": f["region"],
        "country": "XX" if rng.random() < BAD_COUNTRY_RATE else f["country"],
    }


def files_generate(rows: int, directory: Path, seed: int = 7) -> dict[str, Path | int]:
    """Write crm.csv and erp.csv with `rows` rows between them; return their paths and how many ERP rows repeat
    a CRM company."""
    rng = random.Random(seed)
    crm_count = round(rows * 0.6)
    erp_count = rows - crm_count
    shared = erp_count // 2
    directory.mkdir(parents=True, exist_ok=True)
    crm_path, erp_path = directory / f"crm_{rows}.csv", directory / f"erp_{rows}.csv"
    crm_firms = [firm(rng, i) for i in range(crm_count)]
    with crm_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CRM_COLUMNS)
        writer.writeheader()
        for f in crm_firms:
            writer.writerow(crm_row(rng, f))
    erp_firms = rng.sample(crm_firms, shared) + [firm(rng, crm_count + i) for i in range(erp_count - shared)]
    rng.shuffle(erp_firms)
    with erp_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=ERP_COLUMNS)
        writer.writeheader()
        for n, f in enumerate(erp_firms):
            writer.writerow(erp_row(rng, f, 100_000 + n))
    return {"crm": crm_path, "erp": erp_path, "crm_rows": crm_count, "erp_rows": erp_count, "erp_shared": shared}


# --- the database --------------------------------------------------------------------------------------------

COUNT_SQL = {
    "golden_active": "SELECT count(*) FROM canonical_customer WHERE status = 'active'",
    "golden_all": "SELECT count(*) FROM canonical_customer",
    "source_records": "SELECT count(*) FROM canonical_sourcerecord WHERE domain = 'customer'",
    "source_applied": "SELECT count(*) FROM canonical_sourcerecord WHERE domain = 'customer' AND status = 'applied'",
    "xrefs": "SELECT count(*) FROM canonical_crossreference WHERE domain = 'customer'",
    "golden_history": "SELECT count(*) FROM canonical_historicalcustomer",
    "xref_history": "SELECT count(*) FROM canonical_historicalcrossreference",
    "outbox_events": "SELECT count(*) FROM canonical_changeevent",
    "match_keys": "SELECT count(*) FROM canonical_matchkey WHERE domain = 'customer'",
    "open_exceptions": "SELECT count(*) FROM canonical_dataexception WHERE status = 'open'",
    "golden_with_2_sources": "SELECT count(*) FROM (SELECT golden_id FROM canonical_sourcerecord "
    "WHERE domain = 'customer' GROUP BY golden_id HAVING count(*) > 1) AS g",
}


def counts(database_url: str) -> dict[str, int]:
    import psycopg

    out = {}
    with psycopg.connect(database_url) as conn:
        for name, query in COUNT_SQL.items():
            try:
                out[name] = conn.execute(query).fetchone()[0]
            except psycopg.errors.UndefinedTable:
                conn.rollback()
                out[name] = -1
    return out


# --- the CLI run ---------------------------------------------------------------------------------------------

BULK = False  # --bulk: pass `--bulk` to the CLI (and bulk=True in-process): canonical/services/bulk.py
_SUMMARY_RE = re.compile(r"(\d+) record\(s\) in ([\d.]+)s \((\d+)/s\)")


def ingest_cli(path: Path, system: str, batch_size: int | None) -> common.ChildRun:
    cmd = [common.PYTHON, str(ROOT / "manage.py"), "ingest", "--system", system, "--domain", "customer"]
    cmd += ["--no-progress", str(path)]
    if BULK:
        cmd.append("--bulk")
    if batch_size:
        cmd += ["--batch-size", str(batch_size)]
    samples: list[tuple[int, float]] = []  # (source records of this system written, RSS of the command)
    matcher: list[tuple[int, float]] = []  # the same for its child processes (the pipelined ingest's matcher)
    try:
        import psycopg

        watch_conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    except Exception:  # noqa: BLE001 - the curve is a nicety; the run is measured without it
        watch_conn = None

    def watch(pid: int) -> None:
        rss = common.rss_mib(pid)
        if rss is None or watch_conn is None:
            return
        written = watch_conn.execute(
            "SELECT count(*) FROM canonical_sourcerecord WHERE system_id = %s AND domain = 'customer'", [system]
        ).fetchone()[0]
        samples.append((written, rss))
        children = [common.rss_mib(child) for child in common.child_pids(pid)]
        if any(c is not None for c in children):
            matcher.append((written, sum(c for c in children if c is not None)))

    run = common.run_child(cmd, watch=watch)
    if watch_conn is not None:
        watch_conn.close()
    run.extra["rss_curve"] = samples
    run.extra["matcher_rss_curve"] = matcher
    if run.returncode:
        sys.exit(f"{' '.join(cmd)} failed (exit {run.returncode}):\n{(run.stdout + run.stderr)[-4000:]}")
    found = _SUMMARY_RE.search(run.stdout)
    run.extra["pipeline_seconds"] = float(found.group(2)) if found else None
    run.extra["summary"] = " ".join(run.stdout.split("\n")[1:2]).strip()
    return run


def rss_at_quarters(curve: list[tuple[int, float]], rows: int | None) -> dict[str, float | None]:
    """The command's RSS when a quarter, half, three quarters and all of its file's rows were written (the last
    sample at or below each mark), to show whether memory grows with the data within one run."""
    out: dict[str, float | None] = {}
    if not rows:
        return out
    for pct in (25, 50, 75, 100):
        below = [rss for written, rss in curve if written <= rows * pct / 100]
        out[f"{pct}%"] = round(below[-1], 1) if below else None
    return out


def run_once(rows: int, files: dict, database_url: str, batch_size: int | None, analyze_every: float) -> dict:
    common.database_fresh(database_url)
    with common.LoadSampler() as load, common.Analyzer(database_url, analyze_every) as analyzer:
        crm = ingest_cli(files["crm"], "crm", batch_size)
        erp = ingest_cli(files["erp"], "erp", batch_size)
    wall = crm.seconds + erp.seconds
    pipeline = (crm.extra["pipeline_seconds"] or 0) + (erp.extra["pipeline_seconds"] or 0)
    return {
        "rows": rows,
        "seconds": round(wall, 2),
        "records_per_s": round(rows / wall, 1),
        "pipeline_records_per_s": round(rows / pipeline, 1) if pipeline else None,
        "peak_rss_mib": round(max(crm.max_rss_mib, erp.max_rss_mib), 1),
        "cli_cpu_share": round((crm.user_s + crm.sys_s + erp.user_s + erp.sys_s) / wall, 2),
        "cli_cpu_ms_per_record": round(1000 * (crm.user_s + crm.sys_s + erp.user_s + erp.sys_s) / rows, 2),
        "rss_by_progress": {
            system: rss_at_quarters(run.extra["rss_curve"], files[system + "_rows"])
            for system, run in (("crm", crm), ("erp", erp))
        },
        "matcher_rss_by_progress": {
            system: rss_at_quarters(run.extra["matcher_rss_curve"], files[system + "_rows"])
            for system, run in (("crm", crm), ("erp", erp))
            if run.extra["matcher_rss_curve"]
        },
        "crm": {
            "seconds": round(crm.seconds, 2),
            "rss_mib": round(crm.max_rss_mib, 1),
            "summary": crm.extra["summary"],
        },
        "erp": {
            "seconds": round(erp.seconds, 2),
            "rss_mib": round(erp.max_rss_mib, 1),
            "summary": erp.extra["summary"],
        },
        "load_avg_mean": round(load.mean, 1),
        "load_avg_peak": round(load.peak, 1),
        "analyze_runs": analyzer.count,
        "counts": counts(database_url),
    }


# --- in-process: queries per record and a profile ------------------------------------------------------------

_TABLE_RE = re.compile(r'(?:FROM|INTO|UPDATE)\s+"?([a-z_0-9]+)"?', re.IGNORECASE)


def _statement_kind(sql: str) -> str:
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else "?"
    if head in ("SAVEPOINT", "RELEASE", "ROLLBACK", "COMMIT", "BEGIN"):
        return head
    table = _TABLE_RE.search(sql)
    return f"{head} {table.group(1) if table else ''}".strip()


def _ingest_inprocess(path: Path, system: str, batch_size: int | None):
    from canonical.audit import Channel, audit_context
    from canonical.services.files import source_file_ingest

    with audit_context(actor="bench:ingest_customers", channel=Channel.JOB, reason=f"benchmark {path.name}"):
        return source_file_ingest(path=path, system=system, domain="customer", batch_size=batch_size, bulk=BULK)


def queries_report(files: dict, database_url: str, batch_size: int | None) -> dict:
    from django.db import connection, connections
    from django.test.utils import CaptureQueriesContext

    connections.close_all()
    common.database_fresh(database_url)
    report = {}
    for system in ("crm", "erp"):
        connection.ensure_connection()
        connection.queries_limit = 10_000_000  # Django keeps only the last 9,000 by default
        connection.queries_log = deque(maxlen=connection.queries_limit)
        with CaptureQueriesContext(connection) as ctx:
            started, cpu, server_cpu = time.perf_counter(), time.process_time(), common.postgres_cpu_seconds()
            summary = _ingest_inprocess(files[system], system, batch_size)
            wall = time.perf_counter() - started
            cpu = time.process_time() - cpu
            server_cpu = common.postgres_cpu_seconds() - server_cpu if server_cpu is not None else None
        kinds: dict[str, list[float]] = defaultdict(list)
        for q in ctx.captured_queries:
            kinds[_statement_kind(q["sql"])].append(float(q["time"]))
        db_seconds = sum(sum(v) for v in kinds.values())
        records = summary.records
        report[system] = {
            "records": records,
            "outcomes": {k: v for k, v in summary.counts.items() if v},
            "queries": len(ctx.captured_queries),
            "queries_per_record": round(len(ctx.captured_queries) / records, 2),
            "seconds": round(wall, 2),
            "ms_per_record": round(1000 * wall / records, 2),
            "db_ms_per_record": round(1000 * db_seconds / records, 2),
            "db_share": round(db_seconds / wall, 2),
            "client_cpu_ms_per_record": round(1000 * cpu / records, 2),
            "server_cpu_ms_per_record": round(1000 * server_cpu / records, 2) if server_cpu is not None else None,
            "by_statement": [
                {
                    "statement": k,
                    "per_record": round(len(v) / records, 2),
                    "ms_per_record": round(1000 * sum(v) / records, 2),
                }
                for k, v in sorted(kinds.items(), key=lambda kv: -len(kv[1]))
            ],
        }
    return report


STAGES = (  # (label, file suffix, function name): cumulative time of each, where the code has it
    ("structural check pass (read the file once)", "services/files.py", "source_file_check"),
    ("parse CSV rows into envelopes", "services/files.py", "_envelope"),
    ("open batch (existing source records, rules)", "services/ingest.py", "_batch_open"),
    ("receive one record", "services/ingest.py", "_receive"),
    ("process one record", "services/ingest.py", "source_record_process"),
    ("validate attributes", "canonical/validation.py", "validate_attributes"),
    ("match (fuzzy: blocking keys, candidates, scoring)", "matching/fuzzy.py", "match"),
    ("  score candidate pairs", "matching/fuzzy.py", "_score"),
    ("match keys written", "services/ingest.py", "_keys_sync"),
    ("golden record created", "services/golden.py", "golden_record_create"),
    ("golden record applied (linked/updated)", "services/golden.py", "golden_record_apply"),
    ("survivorship", "services/survivorship.py", "survive"),
    ("cross-reference linked", "services/ingest.py", "_xref_link"),
    ("outbox event written", "services/golden.py", "change_event_write"),
    ("history rows (simple-history)", "simple_history/models.py", "create_historical_record"),
    ("SQL execution (all queries, driver included)", "django/db/backends/utils.py", "_execute"),
    ("commits", "django/db/backends/base/base.py", "commit"),
)


def profile_report(files: dict, database_url: str, batch_size: int | None, top: int = 20) -> dict:
    import cProfile
    import io
    import pstats

    from django.db import connections

    connections.close_all()
    common.database_fresh(database_url)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    records = 0
    profiler.enable()
    for system in ("crm", "erp"):
        records += _ingest_inprocess(files[system], system, batch_size).records
    profiler.disable()
    wall = time.perf_counter() - started
    prof_path = Path(tempfile.gettempdir()) / "ingest_customers.prof"
    profiler.dump_stats(prof_path)
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream)
    stats.sort_stats("cumulative").print_stats(top)
    cumulative = stream.getvalue()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(top)
    own = stream.getvalue()
    total = sum(v[2] for v in stats.stats.values()) or 1.0
    stages = []
    for label, suffix, name in STAGES:
        found = [
            v for (fn, _, func), v in stats.stats.items() if func == name and fn.replace("\\", "/").endswith(suffix)
        ]
        if found:
            calls = sum(v[1] for v in found)
            seconds = sum(v[3] for v in found)
            stages.append(
                {
                    "stage": label,
                    "calls": calls,
                    "ms_per_record": round(1000 * seconds / records, 2),
                    "share": round(seconds / total, 2),
                }
            )
    return {
        "records": records,
        "seconds_under_profiler": round(wall, 2),
        "profile_file": str(prof_path),
        "stages": stages,
        "top_cumulative": _trim_pstats(cumulative),
        "top_own_time": _trim_pstats(own),
    }


def _trim_pstats(text: str) -> str:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith("ncalls")), 0)
    return "\n".join(
        line.replace(str(ROOT) + "/", "").replace(sys.prefix + "/", "") for line in lines[start:] if line.strip()
    )


# --- output --------------------------------------------------------------------------------------------------


def markdown(results: list[dict], machine: dict, argv: str, analyze_every: float) -> str:
    analyze = f"; ANALYZE every {analyze_every:.0f} s during the runs" if analyze_every else ""
    out = [
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {common.machine_line(machine)}{analyze}.",
        "",
        f"    {argv}",
        "",
        "| rows (crm + erp) | runs (records/s each) | records/s (median) | wall | peak RSS of `ingest` "
        "| CPU of `ingest` per record | golden (active) | source | xrefs | history rows (golden + xref) | outbox "
        "| open exceptions | load avg (mean / peak) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        m = res["median"]
        c = m["counts"]
        spread = ", ".join(f"{r['records_per_s']:.0f}" for r in res["runs"])
        out.append(
            f"| {m['rows']:,} | {len(res['runs'])} ({spread}) | **{m['records_per_s']:,.0f}** | {m['seconds']:.0f} s "
            f"| {m['peak_rss_mib']:.0f} MiB | {m['cli_cpu_ms_per_record']:.1f} ms | {c['golden_all']:,} ({c['golden_active']:,}) | {c['source_records']:,} "
            f"| {c['xrefs']:,} | {c['golden_history'] + c['xref_history']:,} ({c['golden_history']:,} + "
            f"{c['xref_history']:,}) | {c['outbox_events']:,} | {c['open_exceptions']:,} "
            f"| {m['load_avg_mean']} / {m['load_avg_peak']} |"
        )
    curves = [res for res in results if res["median"].get("rss_by_progress")]
    if curves:
        out += [
            "",
            "RSS of `ingest` (MiB) when 25 / 50 / 75 / 100 % of each file's rows were written (median run):",
            "",
        ]
        for res in curves:
            m = res["median"]
            parts = []
            for system, marks in m["rss_by_progress"].items():
                shown = " / ".join("–" if v is None else f"{v:.0f}" for v in marks.values())
                parts.append(f"{system} {shown}")
            out.append(f"- {m['rows']:,} rows: " + "; ".join(parts))
            matcher = m.get("matcher_rss_by_progress")
            if matcher:  # its RSS counts pages it still shares with the writer since the fork
                shown = "; ".join(
                    f"{system} " + " / ".join("–" if v is None else f"{v:.0f}" for v in marks.values())
                    for system, marks in matcher.items()
                )
                out.append(f"  - its matcher process (pipelined `--bulk`): {shown}")
    return "\n".join(out)


def profile_markdown(rows: int, queries: dict, profile: dict, load: float, machine: dict) -> str:
    out = [
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {common.machine_line(machine)}; "
        f"load average {load:.1f} during the run.",
        "",
        f"    DATABASE_URL=… REDIS_URL=… .venv/bin/python benchmarks/ingest_customers.py --profile --profile-rows {rows}",
        "",
        "| file | records (outcomes) | queries / record | ms / record (wall) | of which SQL | Python CPU / record "
        "| PostgreSQL backend CPU / record |",
        "|---|---|---|---|---|---|---|",
    ]
    for system, rep in queries.items():
        outcomes = ", ".join(f"{k} {v}" for k, v in rep["outcomes"].items())
        out.append(
            f"| {system} | {rep['records']} ({outcomes}) | **{rep['queries_per_record']}** | {rep['ms_per_record']} "
            f"| {rep['db_ms_per_record']} ms ({rep['db_share']:.0%}) | {rep['client_cpu_ms_per_record']} ms "
            f"| {rep['server_cpu_ms_per_record']} ms |"
        )
    out += ["", "Statements per record (erp file: half of its records link to a CRM customer):", ""]
    out += ["| statement | crm: per record | erp: per record |", "|---|---|---|"]
    per = {system: {r["statement"]: r["per_record"] for r in rep["by_statement"]} for system, rep in queries.items()}
    names = sorted(
        set(per.get("crm", {})) | set(per.get("erp", {})), key=lambda n: -max(p.get(n, 0) for p in per.values())
    )
    for name in names:
        crm, erp = per.get("crm", {}).get(name, 0), per.get("erp", {}).get(name, 0)
        if max(crm, erp) >= 0.05:
            out.append(f"| `{name}` | {crm} | {erp} |")
    out += ["", f"Time per pipeline stage (cProfile, cumulative; {profile['records']} records):", ""]
    out += ["| stage | calls | ms / record | share |", "|---|---|---|---|"]
    out += [
        f"| {r['stage'].strip()} | {r['calls']:,} | {r['ms_per_record']} | {r['share']:.0%} |"
        for r in profile["stages"]
    ]
    out += ["", "cProfile, top 20 by cumulative time:", ""]
    out += ["    " + line for line in profile["top_cumulative"].splitlines()]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000, help="customer rows in all (crm + erp); default 100,000")
    parser.add_argument("--smaller", default="", help="smaller sizes to run too, comma separated (e.g. 10000,25000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per size; the median run is reported (default 3)")
    parser.add_argument(
        "--batch-size",
        type=int,
        help="records per transaction (default MDM_INGEST_BATCH_SIZE; with --bulk, MDM_BULK_BATCH_SIZE)",
    )
    parser.add_argument("--profile", action="store_true", help="in-process: queries per record and a cProfile top 20")
    parser.add_argument("--profile-rows", type=int, default=2_000, help="rows for --profile (default 2,000)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench", help="where the CSV files go")
    parser.add_argument(
        "--analyze-every",
        type=float,
        help="run ANALYZE every N seconds during the timed part (default: 60 when the server's autovacuum is off, "
        "as autovacuum's default naptime; else 0 = never)",
    )
    parser.add_argument("--write-doc", action="store_true", help="write the results block in docs/benchmarks.md")
    parser.add_argument("--bulk", action="store_true", help="ingest with the opt-in bulk path (ingest --bulk)")
    args = parser.parse_args(argv)
    global BULK
    BULK = args.bulk
    if args.rows < 10 or args.runs < 1:
        parser.error("--rows must be at least 10 and --runs at least 1")
    try:
        sizes = sorted({int(s) for s in args.smaller.split(",") if s.strip()} | {args.rows})
    except ValueError:
        parser.error("--smaller takes sizes separated by commas, e.g. 10000,25000")

    database_url = common.database_url_required()
    machine = common.machine_description(database_url)
    print(f"machine: {common.machine_line(machine)}", file=sys.stderr)
    analyze_every = args.analyze_every
    if analyze_every is None:
        analyze_every = 60.0 if machine["autovacuum"] == "off" else 0.0
    if analyze_every:
        print(f"ANALYZE every {analyze_every:.0f} s during the runs (autovacuum's analyze)", file=sys.stderr)

    if args.profile:
        import django

        # One process, so that the query log and cProfile see the matcher's work too (the pipelined path forks the
        # matcher off; the same work, split over two processes).
        os.environ["MDM_BULK_PIPELINE"] = "false"

        django.setup()
        files = files_generate(args.profile_rows, args.workdir)
        print(f"--profile: {args.profile_rows} rows in-process (queries, then cProfile)", file=sys.stderr)
        with common.LoadSampler() as load, common.Analyzer(database_url, analyze_every):
            queries = queries_report(files, database_url, args.batch_size)
            profile = profile_report(files, database_url, args.batch_size)
        for system, rep in queries.items():
            print(
                f"\n{system}: {rep['records']} records {rep['outcomes']}: {rep['queries_per_record']} queries/record, "
                f"{rep['ms_per_record']} ms/record of which SQL {rep['db_ms_per_record']} ms ({rep['db_share']:.0%}); "
                f"CPU per record: Python {rep['client_cpu_ms_per_record']} ms, PostgreSQL backend "
                f"{rep['server_cpu_ms_per_record']} ms"
            )
            for row in rep["by_statement"][:14]:
                print(f"  {row['per_record']:>6} /rec  {row['ms_per_record']:>6} ms/rec  {row['statement']}")
        print(
            f"\nstages (cumulative, under cProfile: {profile['seconds_under_profiler']} s for {profile['records']} records):"
        )
        for row in profile["stages"]:
            print(f"  {row['ms_per_record']:>7} ms/rec  {row['share']:>5.0%}  {row['calls']:>7} calls  {row['stage']}")
        print(f"\ncProfile top 20 by cumulative time ({profile['profile_file']}):\n{profile['top_cumulative']}")
        print(f"\ncProfile top 20 by own time:\n{profile['top_own_time']}")
        print(
            json.dumps(
                {
                    "profile_rows": args.profile_rows,
                    "load_avg_mean": round(load.mean, 1),
                    "queries": queries,
                    "stages": profile["stages"],
                }
            )
        )
        if args.write_doc:
            block = profile_markdown(args.profile_rows, queries, profile, load.mean, machine)
            common.results_block_write("ingest_customers_profile" + ("_bulk" if BULK else ""), block)
            print(f"wrote the profile block in {common.DOC}", file=sys.stderr)
        return 0

    results = []
    for size in sizes:
        files = files_generate(size, args.workdir)
        runs = []
        for n in range(args.runs):
            print(f"{size} rows: run {n + 1}/{args.runs} …", file=sys.stderr)
            run = run_once(size, files, database_url, args.batch_size, analyze_every)
            print(
                f"  {run['records_per_s']:.0f} rec/s, {run['seconds']:.1f} s, peak RSS {run['peak_rss_mib']:.0f} MiB, "
                f"load {run['load_avg_mean']}; crm: {run['crm']['summary']}; erp: {run['erp']['summary']}",
                file=sys.stderr,
            )
            runs.append(run)
        results.append({"rows": size, "runs": runs, "median": common.median_run(runs, "records_per_s")})
        for path in (files["crm"], files["erp"]):
            path.unlink(missing_ok=True)
    command = "DATABASE_URL=… REDIS_URL=… .venv/bin/python benchmarks/ingest_customers.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    block = markdown(results, machine, command.replace(" --write-doc", ""), analyze_every)
    print(block)
    print(json.dumps({"machine": machine, "results": results}))
    if args.write_doc:
        common.results_block_write("ingest_customers" + ("_bulk" if BULK else ""), block)  # --bulk: a block of its own
        print(f"wrote the results block in {common.DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
