"""Helpers shared by the benchmark scripts: the machine, the database, medians, and the results block in the docs.

Kept free of Django imports, so a script can describe the machine and recreate its database before it sets
Django up.
"""

from __future__ import annotations

import math
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
DOC = ROOT / "docs" / "benchmarks.md"


# --- the machine ---------------------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return re.sub(r"\s+", " ", line.split(":", 1)[1]).strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def postgres_version(database_url: str) -> str:
    import psycopg

    with psycopg.connect(admin_url(database_url), connect_timeout=10) as conn:
        return str(conn.execute("SHOW server_version").fetchone()[0]).split(" ")[0]


def admin_url(database_url: str) -> str:
    """The same server's `postgres` database (to create or drop the benchmark's own)."""
    return urlunsplit(urlsplit(database_url)._replace(path="/postgres"))


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "canonical"], cwd=ROOT, capture_output=True)
        return out.stdout.strip() + ("+uncommitted canonical/ changes" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def machine_description(database_url: str | None = None) -> dict[str, str]:
    """Cores, CPU, RAM, Python, PostgreSQL and the commit measured: what a results block names."""
    out = {
        "cores": str(os.cpu_count()),
        "cpu": cpu_model(),
        "ram": f"{ram_gib():.0f} GiB",
        "python": platform.python_version(),
        "commit": git_commit(),
    }
    if database_url:
        out["postgresql"] = postgres_version(database_url)
        out["autovacuum"] = "on" if autovacuum_on(database_url) else "off"
    return out


def machine_line(machine: dict[str, str]) -> str:
    pg = f", PostgreSQL {machine['postgresql']} (autovacuum {machine['autovacuum']})" if "postgresql" in machine else ""
    return (
        f"{machine['cores']} cores ({machine['cpu']}), {machine['ram']} RAM, Python {machine['python']}{pg}; "
        f"commit {machine['commit']}"
    )


class LoadSampler:
    """Samples the 1-minute load average once a second while it runs (`with LoadSampler() as load: …`)."""

    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(self.interval)

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples) if self.samples else os.getloadavg()[0]

    @property
    def peak(self) -> float:
        return max(self.samples) if self.samples else os.getloadavg()[0]


# --- numbers -------------------------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def median_run(runs: Sequence[dict], key: str) -> dict:
    """The run whose `key` is the median (the upper middle one for an even count), to report as a whole."""
    ordered = sorted(runs, key=lambda r: r[key])
    return ordered[len(ordered) // 2]


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[min(len(sorted_values), rank) - 1]


class Analyzer:
    """Runs ANALYZE on a database every `interval` seconds while it runs: autovacuum's analyze, for a server that
    has autovacuum off (as this project's CI server has). Without it a bulk load into fresh tables keeps the
    planner's estimates of empty tables, and plans that scan whole tables per record go unnoticed."""

    def __init__(self, database_url: str, interval: float):
        self.database_url = database_url
        self.interval = interval
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        while not self._stop.wait(self.interval):
            try:
                with psycopg.connect(self.database_url, autocommit=True, connect_timeout=10) as conn:
                    conn.execute("ANALYZE")
                self.count += 1
            except psycopg.Error:
                pass  # the database may be being dropped between runs

    def __enter__(self) -> Analyzer:
        if self.interval > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def autovacuum_on(database_url: str) -> bool:
    import psycopg

    with psycopg.connect(admin_url(database_url), connect_timeout=10) as conn:
        return conn.execute("SHOW autovacuum").fetchone()[0] == "on"


# --- the database --------------------------------------------------------------------------------------------


def database_url_required() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit(
            "this benchmark needs PostgreSQL: set DATABASE_URL=postgres://USER@HOST:PORT/NAME "
            "(a database of its own: the benchmark drops and recreates it)"
        )
    return url


def database_recreate(database_url: str) -> None:
    """Drop and create the database DATABASE_URL names (through the server's `postgres` database)."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(database_url)
    name = parts.path.lstrip("/")
    if not name or name in ("postgres", "template0", "template1"):
        sys.exit(f"refusing to drop the database {name!r}: give the benchmark a database of its own")
    with psycopg.connect(admin_url(database_url), autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def manage(*args: str, env: dict[str, str] | None = None, quiet: bool = True, root: Path = ROOT) -> None:
    """Run `manage.py ARGS` of the tree at `root` (this one by default) in a child process; exit with its output
    if it fails."""
    proc = subprocess.run(
        [PYTHON, str(root / "manage.py"), *args],
        cwd=root,
        env=env or os.environ.copy(),
        capture_output=quiet,
        text=True,
    )
    if proc.returncode:
        detail = (proc.stdout or "") + (proc.stderr or "") if quiet else ""
        where = "" if root == ROOT else f" in {root}"
        sys.exit(f"manage.py {' '.join(args)} failed{where} (exit {proc.returncode}):\n{detail[-4000:]}")


def database_fresh(database_url: str, *, root: Path = ROOT) -> float:
    """Drop, create and migrate the benchmark database (with the migrations of the tree at `root`), and flush
    REDIS_URL's database where one is set (the matcher keeps counts there); return the seconds it took."""
    started = time.perf_counter()
    database_recreate(database_url)
    manage("migrate", "--noinput", root=root)
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        import redis

        redis.Redis.from_url(redis_url).flushdb()
    return time.perf_counter() - started


@dataclass
class ChildRun:
    returncode: int
    seconds: float
    max_rss_mib: float
    user_s: float
    sys_s: float
    stdout: str = ""
    stderr: str = ""
    extra: dict = field(default_factory=dict)


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a local process (the PostgreSQL backend serving us), or None if unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float | None:
    """CPU seconds of every local PostgreSQL process so far, the backends that have exited included (their time
    is added to the postmaster's children's time once reaped), or None where /proc or the postmaster is not found.
    For a process pair whose backends come and go (the pipelined ingest's matcher); the deltas also hold the
    server's own background work (checkpointer, autovacuum) over the same time."""
    tick = os.sysconf("SC_CLK_TCK")
    total, postmaster = 0.0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
            name = head.split("(", 1)[1]
        except (OSError, IndexError):
            continue
        if name != "postgres" and not name.startswith("postgres"):
            continue
        fields = tail.split()
        total += (int(fields[11]) + int(fields[12])) / tick
        if (
            fields[1] == "1"
            or Path(f"/proc/{fields[1]}/stat").exists()
            and "postgres" not in (Path(f"/proc/{fields[1]}/stat").read_text().split(")", 1)[0])
        ):
            total += (int(fields[13]) + int(fields[14])) / tick  # the postmaster: its reaped children
            postmaster = True
    return round(total, 2) if postmaster else None


def child_pids(pid: int) -> list[int]:
    """A process's children (every thread's), or [] once it is gone."""
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found += [int(p) for p in children.read_text().split()]
        except (OSError, ValueError):
            continue
    return found


def rss_mib(pid: int) -> float | None:
    """A process's resident set size now (VmRSS), or None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def run_child(cmd: list[str], *, env: dict[str, str] | None = None, watch=None, watch_every: float = 2.0) -> ChildRun:
    """Run a command and measure it alone: wall time, and its own peak RSS and CPU time (wait4's rusage).
    `watch(pid)`, if given, is called every `watch_every` seconds while it runs (from another thread)."""
    import tempfile

    with tempfile.TemporaryFile(mode="w+") as out, tempfile.TemporaryFile(mode="w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env or os.environ.copy(), stdout=out, stderr=err, text=True)
        done = threading.Event()
        watcher = None
        if watch is not None:

            def _watch() -> None:
                while not done.wait(watch_every):
                    watch(proc.pid)

            watcher = threading.Thread(target=_watch, daemon=True)
            watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)
        done.set()
        if watcher is not None:
            watcher.join()
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return ChildRun(
            returncode=proc.returncode,
            seconds=seconds,
            max_rss_mib=usage.ru_maxrss / 1024,  # KiB on Linux
            user_s=usage.ru_utime,
            sys_s=usage.ru_stime,
            stdout=out.read(),
            stderr=err.read(),
        )


# --- the results block in docs/benchmarks.md -----------------------------------------------------------------


def results_block_write(name: str, markdown: str, *, doc: Path = DOC) -> None:
    """Replace the text between `<!-- results:NAME -->` and `<!-- /results:NAME -->` in the doc.

    Only that block changes; other people's sections stay as they are. A doc without the markers gets the
    block appended at its end (write the section's prose around it once, by hand).
    """
    start, end = f"<!-- results:{name} -->", f"<!-- /results:{name} -->"
    block = f"{start}\n{markdown.rstrip()}\n{end}"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + block + after
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.write_text(text)
