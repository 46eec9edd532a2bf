"""Golden-record GET latency under concurrent load: the hub under gunicorn, driven by wrk.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mdm_bench REDIS_URL=redis://127.0.0.1:6379/10 \\
        .venv/bin/python benchmarks/api_latency.py [--golden 10000] [--workers 4] [--connections 4,16] \\
        [--duration 20] [--runs 3] [--profile 500] [--write-doc]

1. Drop, create and migrate the database DATABASE_URL names; flush REDIS_URL's db.
2. Load N golden customers as the pipeline leaves them, fast: a CRM source record each (a third also an
   ERP one, with its billing address), survivorship computed by the hub's own `golden_compute` (so values
   and per-field provenance are real), golden records and cross-references written with simple-history's
   `bulk_create_with_history` (history rows as usual). It is a read benchmark: the ingest is measured by
   benchmarks/ingest_customers.py.
3. Create an API client with `read:customer` (`api_client_create`), start `gunicorn mdm.wsgi:application`
   (`--workers` sync workers, or gthread workers with `--threads` each) on a free loopback port with DEBUG off, and warm it up.
4. For each `--connections` C, `--runs` times: `wrk -t1 -cC -dDs` with a Lua script that asks for
   `GET /api/v1/customers/<random loaded id>/` with the client's key. wrk is closed-loop: C clients, each
   sending its next request when the last one is answered, for D seconds. Reports p50/p95/p99/max (wrk's
   HdrHistogram, from the Lua `done` hook), requests/s, non-2xx answers and socket errors; the median of the
   runs for each figure.
5. Always stop the server (try/finally).

Why wrk (Debian's `wrk` package: `apt-get install wrk`): it is C on epoll; one thread drives 16 connections
at a few percent of one core, so nearly all of the machine's two cores stay with gunicorn and PostgreSQL. A
Python asyncio + httpx client would need most of a core for the same request rate and would compete with
the server it measures. The script prints wrk's own CPU time so that can be checked.

Throttling stays on with a rate above what the run can reach: API_THROTTLE_RATE=100000000/min. Each web
process then counts its requests in Redis 100 at a time (a lease, canonical/api/throttling.py); at the default
6000/min a lease is 12 requests: one Redis round trip (~0.1 ms of CPU) per 12 requests instead of per 100.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402
import ingest_customers as data  # noqa: E402  (the same generated companies)

ROOT = common.ROOT
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")

LUA = r"""
local ids = {}
local key = ""

function init(args)
  key = args[1]
  for line in io.lines(args[2]) do ids[#ids + 1] = line end
  math.randomseed(os.time())
  wrk.headers["Authorization"] = "Bearer " .. key
  wrk.headers["Accept"] = "application/json"
end

function request()
  return wrk.format("GET", "/api/v1/customers/" .. ids[math.random(#ids)] .. "/")
end

function done(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "non_2xx": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p95_us": %d, "p99_us": %d, "p999_us": %d, ' ..
    '"max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout, latency:percentile(50),
    latency:percentile(90), latency:percentile(95), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
"""
THROTTLE_RATE = "100000000/min"


# --- the data ------------------------------------------------------------------------------------------------


def golden_load(n: int, seed: int = 11) -> list[str]:
    """N golden customers with their source records, provenance, cross-references and history; their ids."""
    from django.db import transaction
    from simple_history.utils import bulk_create_with_history
    from tqdm import tqdm

    from canonical.audit import Channel, new_request_id
    from canonical.domains import get_domain
    from canonical.models import CrossReference, Customer, GoldenStatus, SourceRecord, SourceStatus
    from canonical.services.golden import golden_compute
    from canonical.services.ingest import content_hash
    from canonical.services.ownership import rules_cached
    from canonical.validation import validate_attributes

    spec = get_domain("customer")
    rng = random.Random(seed)
    history = {
        "history_actor": "bench:api_latency",
        "history_channel": Channel.JOB,
        "history_request_id": new_request_id(),
    }
    ids: list[str] = []
    chunk = 1000
    with tqdm(total=n, desc="golden customers (bulk)", unit="rec", file=sys.stderr) as bar, rules_cached():
        for start in range(0, n, chunk):
            with transaction.atomic():
                groups: list[tuple[uuid.UUID, list[SourceRecord]]] = []
                sources: list[SourceRecord] = []
                for i in range(start, min(n, start + chunk)):
                    f = data.firm(rng, i)
                    rows = [("crm", data.crm_row(rng, f))]
                    if rng.random() < 1 / 3:
                        rows.append(("erp", data.erp_row(rng, f, 100_000 + i)))
                    golden_id = uuid.uuid4()
                    members = []
                    for system, row in rows:
                        row["country"] = f["country"]  # loaded records are valid ones
                        attributes = {k: (v or None) for k, v in row.items() if k not in ("source_id", "updated_at")}
                        values, _ = validate_attributes(spec, attributes, system=system)
                        sr = SourceRecord(
                            system_id=system,
                            domain="customer",
                            source_id=row["source_id"],
                            attributes=attributes,
                            values=values,
                            updated_at=dt.datetime.fromisoformat(row["updated_at"].replace("Z", "+00:00")),
                            content_hash=content_hash(attributes, False),
                            status=SourceStatus.APPLIED,
                            golden_id=golden_id,
                        )
                        members.append(sr)
                    sources += members
                    groups.append((golden_id, members))
                SourceRecord.objects.bulk_create(sources)  # not history-tracked; pks come back (RETURNING)
                customers, xrefs = [], []
                for golden_id, members in groups:
                    survival = golden_compute("customer", None, members, overrides={})
                    record = Customer(
                        id=golden_id, status=GoldenStatus.ACTIVE, version=1, provenance=survival.provenance
                    )
                    for name, value in survival.values.items():
                        if spec.get(name) is not None and spec.get(name).kind != "ref":
                            setattr(record, name, value)
                    record._change_reason = f"created from {members[0].system_id} customer {members[0].source_id}"
                    customers.append(record)
                    xrefs += [
                        CrossReference(
                            system_id=sr.system_id,
                            domain="customer",
                            source_id=sr.source_id,
                            golden_id=golden_id,
                            source_record=sr,
                        )
                        for sr in members
                    ]
                    ids.append(str(golden_id))
                bulk_create_with_history(customers, Customer, batch_size=500, custom_historical_attrs=history)
                bulk_create_with_history(
                    xrefs,
                    CrossReference,
                    batch_size=500,
                    default_change_reason="linked",
                    custom_historical_attrs=history,
                )
            bar.update(len(groups))
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    return ids


# --- the server ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_start(port: int, workers: int, log: Path, threads: int = 1) -> subprocess.Popen:
    gunicorn = Path(common.PYTHON).with_name("gunicorn")
    if not gunicorn.exists():
        sys.exit(f"{gunicorn} not found: install the project (`.venv/bin/pip install -e .`), gunicorn is pinned")
    env = os.environ.copy()
    env.update({"DEBUG": "false", "API_THROTTLE_RATE": THROTTLE_RATE, "LOG_LEVEL": "WARNING"})
    cmd = [str(gunicorn), "mdm.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
    if threads > 1:  # gthread: a thread pool per worker, and HTTP keep-alive (sync workers close every connection)
        cmd += ["--worker-class", "gthread", "--threads", str(threads)]
    else:
        cmd += ["--worker-class", "sync"]
    cmd += ["--backlog", "2048", "--timeout", "60", "--log-level", "warning"]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def server_line(args: argparse.Namespace) -> str:
    if args.threads > 1:
        return f"{args.workers} gthread workers × {args.threads} threads"
    return f"{args.workers} sync workers"


def server_stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)  # gunicorn's master stops its workers
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the master and its workers only
        proc.wait(timeout=10)


def server_ready(url: str, key: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"gunicorn exited ({proc.returncode}) before it answered:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            sys.exit(f"the hub answered {exc.code} to {url}: {exc.read()[:500]!r}")
        except OSError as exc:
            last = str(exc)
        time.sleep(0.5)
    sys.exit(f"gunicorn did not answer {url} within {timeout:.0f} s ({last}); its log:\n{log.read_text()[-3000:]}")


def worker_cpu(proc: subprocess.Popen) -> float:
    """CPU seconds used so far by gunicorn's master and workers (from /proc)."""
    total = 0.0
    pids = [proc.pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    except OSError:
        pass
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError):
            pass
    return total


# --- the load ------------------------------------------------------------------------------------------------


def wrk_run(url: str, script: Path, key: str, ids_file: Path, connections: int, seconds: int) -> dict:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), url]
    cmd += ["--", key, str(ids_file)]
    run = common.run_child(cmd)
    line = next((line for line in run.stdout.splitlines() if line.startswith("WRKJSON ")), None)
    if run.returncode or line is None:
        sys.exit(f"wrk failed (exit {run.returncode}):\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    seconds_measured = raw["duration_us"] / 1e6
    return {
        "connections": connections,
        "requests": raw["requests"],
        "rps": round(raw["requests"] / seconds_measured, 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p95_ms": raw["p95_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "p999_ms": raw["p999_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "mean_ms": round(raw["mean_us"] / 1000, 2),
        "non_2xx": raw["non_2xx"],
        "socket_errors": raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        "wrk_cpu_share": round((run.user_s + run.sys_s) / run.seconds, 3),
    }


def request_profile(ids: list[str], key: str, requests: int, top: int = 20) -> dict:
    """In-process: GETs through Django's test client (every middleware, DRF, the serializer): queries per request,
    CPU per request, and a cProfile top list. The server under load is not involved."""
    import cProfile
    import io
    import pstats
    from collections import Counter

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings

    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_ACCEPT="application/json")
    rng = random.Random(5)
    with override_settings(REST_FRAMEWORK={**_rest_settings(), "DEFAULT_THROTTLE_RATES": {"client": THROTTLE_RATE}}):
        for _ in range(20):  # warm-up: imports, URL resolver, connection
            assert client.get(f"/api/v1/customers/{rng.choice(ids)}/").status_code == 200
        statements: Counter = Counter()
        sql_seconds, wall, cpu = 0.0, 0.0, 0.0
        for _ in range(requests):  # one capture per request: each request resets the connection's query log
            with CaptureQueriesContext(connection) as ctx:
                started, cpu_started = time.perf_counter(), time.process_time()
                response = client.get(f"/api/v1/customers/{rng.choice(ids)}/")
                wall += time.perf_counter() - started
                cpu += time.process_time() - cpu_started
            assert response.status_code == 200, response.content[:300]
            statements.update(data._statement_kind(q["sql"]) for q in ctx.captured_queries)
            sql_seconds += sum(float(q["time"]) for q in ctx.captured_queries)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(requests):
            client.get(f"/api/v1/customers/{rng.choice(ids)}/")
        profiler.disable()
    stream = io.StringIO()
    pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(top)
    own = io.StringIO()
    pstats.Stats(profiler, stream=own).sort_stats("tottime").print_stats(15)
    return {
        "top_own_time": data._trim_pstats(own.getvalue()),
        "requests": requests,
        "queries_per_request": round(sum(statements.values()) / requests, 2),
        "statements": {k: round(v / requests, 2) for k, v in statements.most_common()},
        "ms_per_request": round(1000 * wall / requests, 2),
        "cpu_ms_per_request": round(1000 * cpu / requests, 2),
        "sql_ms_per_request": round(1000 * sql_seconds / requests, 2),
        "bytes": len(response.content),
        "top_cumulative": data._trim_pstats(stream.getvalue()),
    }


def reused_ids(n: int, database_url: str) -> list[str] | None:
    """The golden customer ids of an earlier run's load when the database holds exactly n of them, else None."""
    import psycopg

    try:
        with psycopg.connect(database_url, connect_timeout=10) as conn:
            ids = [str(r[0]) for r in conn.execute("SELECT id FROM canonical_customer ORDER BY id")]
    except psycopg.Error:
        return None
    return ids if len(ids) == n else None


def _rest_settings() -> dict:
    from django.conf import settings

    return dict(settings.REST_FRAMEWORK)


FIGURES = ("rps", "p50_ms", "p95_ms", "p99_ms", "max_ms", "server_cpu_ms_per_request", "load_avg")


def markdown(series: list[dict], machine: dict, args: argparse.Namespace, golden: int, profile: dict | None) -> str:
    command = (
        f"DATABASE_URL=… REDIS_URL=… .venv/bin/python benchmarks/api_latency.py --golden {golden} "
        f"--workers {args.workers}"
        + (f" --threads {args.threads}" if args.threads > 1 else "")
        + f" --connections {args.connections} --duration {args.duration} --runs {args.runs}"
        + (f" --profile {args.profile}" if args.profile else "")
    )
    out = [
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {common.machine_line(machine)}; "
        f"gunicorn {server_line(args)}, wrk 1 thread.",
        "",
        f"    {command}",
        "",
        "| concurrent clients | runs × s | requests (median run) | requests/s | p50 | p95 | p99 | max | non-2xx "
        "| gunicorn CPU / request | wrk CPU | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in series:
        m = s["median"]
        out.append(
            f"| {s['connections']} | {len(s['runs'])} × {args.duration} | {m['requests']:,} | {m['rps']:,.0f} "
            f"| {m['p50_ms']:.1f} ms | {m['p95_ms']:.1f} ms | **{m['p99_ms']:.1f} ms** | {m['max_ms']:.0f} ms "
            f"| {sum(r['non_2xx'] + r['socket_errors'] for r in s['runs'])} | {m['server_cpu_ms_per_request']:.1f} ms "
            f"| {m['wrk_cpu_share']:.0%} of a core | {m['load_avg']:.1f} |"
        )
    out += ["", "Each figure is the median of the runs; per run (p50 / p99 ms, requests/s):", ""]
    for s in series:
        runs = "; ".join(f"{r['p50_ms']:.1f} / {r['p99_ms']:.1f} ms, {r['rps']:.0f}/s" for r in s["runs"])
        out.append(f"- {s['connections']} clients: {runs}")
    if profile:
        statements = ", ".join(f"`{k}` {v}" for k, v in profile["statements"].items())
        out += [
            "",
            f"One request in-process (`--profile {profile['requests']}`: Django's test client, every middleware, no "
            f"HTTP server, no concurrency): **{profile['queries_per_request']} queries** ({statements}); "
            f"{profile['ms_per_request']} ms wall, of which {profile['cpu_ms_per_request']} ms CPU in Python and "
            f"{profile['sql_ms_per_request']} ms in SQL round trips; {profile['bytes']:,} bytes of JSON. "
            "cProfile, top 20 by cumulative time:",
            "",
        ]
        out += ["    " + line for line in profile["top_cumulative"].splitlines()]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--golden", type=int, default=10_000, help="golden customers to load (default 10,000)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4)")
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per worker: 1 = sync workers (default), more = gthread"
    )
    parser.add_argument("--connections", default="4,16", help="concurrent clients, comma separated (default 4,16)")
    parser.add_argument("--duration", type=int, default=20, help="seconds per run (default 20)")
    parser.add_argument("--runs", type=int, default=3, help="runs per concurrency; medians reported (default 3)")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="first profile N GETs in-process")
    parser.add_argument("--write-doc", action="store_true", help="write the results block in docs/benchmarks.md")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the database when it already holds exactly --golden customers from an earlier run (no reload)",
    )
    args = parser.parse_args(argv)
    try:
        levels = [int(c) for c in args.connections.split(",") if c.strip()]
    except ValueError:
        parser.error("--connections takes numbers separated by commas, e.g. 4,16")
    if not levels or min(levels) < 1 or args.golden < 1 or args.runs < 1 or args.duration < 1 or args.workers < 1:
        parser.error("--golden, --workers, --connections, --duration and --runs must be positive")
    if args.threads < 1:
        parser.error("--threads must be positive")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: `apt-get install wrk` (Debian's package), then run this again")

    database_url = common.database_url_required()
    machine = common.machine_description(database_url)
    print(f"machine: {common.machine_line(machine)}", file=sys.stderr)
    ids = reused_ids(args.golden, database_url) if args.reuse else None
    if ids is None:
        common.database_fresh(database_url)

    import django

    django.setup()
    from django.db import connections

    from canonical.api.clients import api_client_create
    from canonical.audit import Channel, audit_context
    from canonical.models import ApiClient

    if ids is None:
        started = time.perf_counter()
        ids = golden_load(args.golden)
        print(f"loaded {len(ids)} golden customers in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    else:
        print(f"reusing the {len(ids)} golden customers already loaded", file=sys.stderr)
    ApiClient.objects.filter(name="bench-reader").delete()  # an earlier run's (--reuse); no history table
    with audit_context(actor="bench:api_latency", channel=Channel.JOB, reason="benchmark client"):
        _, key = api_client_create(name="bench-reader", scopes=["read:customer"])
    profile = None
    if args.profile:
        profile = request_profile(ids, key, args.profile)
        print(
            f"in-process, {profile['requests']} GETs: {profile['queries_per_request']} queries/request "
            f"{profile['statements']}, {profile['ms_per_request']} ms/request (CPU {profile['cpu_ms_per_request']} ms, "
            f"SQL {profile['sql_ms_per_request']} ms), {profile['bytes']} bytes\n{profile['top_cumulative']}\n"
            f"by own time:\n{profile['top_own_time']}",
            file=sys.stderr,
        )
    connections.close_all()

    workdir = Path(tempfile.mkdtemp(prefix="api_latency_"))
    ids_file, script, log = workdir / "ids.txt", workdir / "get_customer.lua", workdir / "gunicorn.log"
    ids_file.write_text("\n".join(ids) + "\n")
    script.write_text(LUA)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = server_start(port, args.workers, log, args.threads)
    series = []
    try:
        server_ready(f"{base}/api/v1/customers/{ids[0]}/", key, server, log)
        print(f"gunicorn ({server_line(args)}) on {base}; warming up", file=sys.stderr)
        wrk_run(base, script, key, ids_file, max(levels), 5)
        for level in levels:
            runs = []
            for n in range(args.runs):
                cpu_before = worker_cpu(server)
                with common.LoadSampler() as load:
                    run = wrk_run(base, script, key, ids_file, level, args.duration)
                run["server_cpu_ms_per_request"] = round(
                    1000 * (worker_cpu(server) - cpu_before) / max(run["requests"], 1), 2
                )
                run["load_avg"] = round(load.mean, 1)
                print(
                    f"  {level} clients, run {n + 1}/{args.runs}: {run['rps']:.0f} req/s, p50 {run['p50_ms']:.1f} ms, "
                    f"p99 {run['p99_ms']:.1f} ms, non-2xx {run['non_2xx']}, socket errors {run['socket_errors']}, "
                    f"wrk CPU {run['wrk_cpu_share']:.0%}, load {run['load_avg']}",
                    file=sys.stderr,
                )
                runs.append(run)
            median = {k: common.median([r[k] for r in runs]) for k in FIGURES}
            median["requests"] = int(common.median([r["requests"] for r in runs]))
            median["wrk_cpu_share"] = common.median([r["wrk_cpu_share"] for r in runs])
            series.append({"connections": level, "runs": runs, "median": median})
    finally:
        server_stop(server)
    errors = sum(r["non_2xx"] + r["socket_errors"] for s in series for r in s["runs"])
    block = markdown(series, machine, args, len(ids), profile)
    print(block)
    print(
        json.dumps(
            {"machine": machine, "golden": len(ids), "workers": args.workers, "threads": args.threads, "series": series}
        )
    )
    if errors:
        print(f"{errors} request(s) failed (non-2xx or socket errors); gunicorn's log: {log}", file=sys.stderr)
    if args.write_doc:
        common.results_block_write("api_latency", block)
        print(f"wrote the results block in {common.DOC}", file=sys.stderr)
    if not errors:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
