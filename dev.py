#!/usr/bin/env python3
"""Quick start for the hub, with nothing but Python 3.11+.

    python3 dev.py demo     set up .venv, migrate, load the demo data and run the hub (SQLite, eager Celery)
    python3 dev.py test     run the test suite (on PostgreSQL and Redis when they are reachable)
    python3 dev.py check    lint (ruff) and check that migrations are in sync

Only the standard library is used here: this script makes the virtual environment the rest runs in.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import socket
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
STAMP = VENV / ".mdm-installed"
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/mdm"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def run(cmd: list[str], env: dict | None = None, check: bool = True) -> int:
    proc = subprocess.run(cmd, cwd=ROOT, env=env)
    if check and proc.returncode != 0:
        raise SystemExit(f"[dev] command failed ({proc.returncode}): {' '.join(map(str, cmd))}")
    return proc.returncode


def ensure_venv(extras: str = "dev") -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 (this script is what tells an older Python)
        raise SystemExit(f"[dev] Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    if not PY.exists():
        say(f"creating virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    say("installing the hub and its dependencies (pyproject.toml) — first run takes a minute")
    for args in (["--upgrade", "pip"], ["-e", f".[{extras}]"]):
        proc = subprocess.run(
            [str(PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
            raise SystemExit(
                "[dev] installing dependencies failed (output above). Check the network access to PyPI, "
                "then run the same command again."
            )
    STAMP.write_text(wanted)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def postgres_ready(url: str) -> tuple[bool, str]:
    code = (
        "import sys, psycopg\n"
        "url = sys.argv[1]\n"
        "base, _, name = url.rpartition('/')\n"
        "with psycopg.connect(base + '/postgres', autocommit=True, connect_timeout=3) as c:\n"
        "    if not c.execute('select 1 from pg_database where datname=%s', (name,)).fetchone():\n"
        "        c.execute(f'create database \"{name}\"')\n"
    )
    proc = subprocess.run([str(PY), "-c", code, url], cwd=ROOT, capture_output=True, text=True)
    return proc.returncode == 0, (proc.stderr.strip().splitlines() or [""])[-1]


def service_env() -> dict:
    """Point the tests at PostgreSQL and Redis when they answer; say plainly when they don't."""
    env = dict(os.environ)
    if not env.get("DATABASE_URL"):
        if port_open("127.0.0.1", 5432):
            ok, why = postgres_ready(DEFAULT_PG)
            if ok:
                env["DATABASE_URL"] = DEFAULT_PG
            else:
                say(f"PostgreSQL answers on 127.0.0.1:5432 but cannot be used ({why}); testing on SQLite")
        else:
            say("PostgreSQL is not reachable on 127.0.0.1:5432: testing on SQLite; PostgreSQL-only tests will NOT run")
    if not env.get("REDIS_URL"):
        if port_open("127.0.0.1", 6379):
            env["REDIS_URL"] = DEFAULT_REDIS
        else:
            say("Redis is not reachable on 127.0.0.1:6379: Redis-backed tests will NOT run")
    # With Redis, Celery queues tasks to it as in production; tests that need a task to run in-process
    # say so themselves (fixtures), and the end-to-end tests start real workers.
    return env


def start_sandbox(port: int) -> subprocess.Popen | None:
    """The sandbox CRM/ERP/PSA/HR systems, in their own process, for the lead-to-project demo."""
    store = ROOT / "var" / "sandbox"
    store.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [str(PY), "-m", "connectors.sandbox", "--port", str(port), "--store", str(store)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(50):
        if port_open("127.0.0.1", port):
            return proc
        time.sleep(0.2)
    proc.terminate()
    say(f"the sandbox systems did not start on port {port}; the demo goes on without the lead-to-project flow")
    return None


def _port(text: str) -> int:
    """A TCP port for argparse: 1-65534 (the sandbox systems take the port after it)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65534:
        raise argparse.ArgumentTypeError(f"{port} is not a port between 1 and 65534")
    return port


def cmd_demo(args: argparse.Namespace) -> None:
    ensure_venv()
    env = dict(os.environ)
    env.setdefault("LOG_FORMAT", "text")
    manage = [str(PY), "manage.py"]
    say("preparing the database (SQLite in var/ unless DATABASE_URL is set)")
    run([*manage, "migrate", "--no-input", "-v", "0"], env=env)
    run([*manage, "load_demo", "--admin", "--api-client"], env=env)
    sandbox_port = args.port + 1
    sandbox = None if args.no_sandbox else start_sandbox(sandbox_port)
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    if sandbox is not None:
        say(f"sandbox systems (CRM, ERP, PSA, HR) at {sandbox_url}/_admin — running the lead-to-project flow once")
        run([*manage, "sandbox", "configure", "--url", sandbox_url], env=env, check=False)
        run([*manage, "sandbox", "lead-to-project", "--url", sandbox_url], env=env, check=False)
    if args.no_run:
        if sandbox is not None:
            sandbox.terminate()
        return
    url = f"http://{args.host}:{args.port}"
    print(
        "\n"
        f"  The hub is up at {url}/\n"
        f"  Admin (stewards):  {url}/admin/   login admin / admin   (workbench: {url}/admin/workbench/)\n"
        f"  API docs:          {url}/api/docs/\n"
        f"  API:               {url}/api/v1/customers/   (Authorization: Bearer <the demo key printed above>)\n"
        f"  Change feed:       {url}/api/v1/changes?after=0   Health: {url}/health   Metrics: {url}/metrics\n"
        + (f"  Sandbox systems:   {sandbox_url}/_admin\n" if sandbox is not None else "")
        + "  Stop with Ctrl-C.\n",
        flush=True,
    )
    try:
        subprocess.run([str(PY), "manage.py", "runserver", f"{args.host}:{args.port}", "--noreload"], cwd=ROOT, env=env)
    except KeyboardInterrupt:
        pass
    finally:
        if sandbox is not None:
            sandbox.terminate()


def cmd_test(args: argparse.Namespace) -> None:
    ensure_venv()
    env = service_env()
    say(
        "database: "
        + (env.get("DATABASE_URL") or "SQLite (embedded)")
        + " | redis: "
        + (env.get("REDIS_URL") or "none")
    )
    code = run([str(PY), "-m", "pytest", *args.pytest_args], env=env, check=False)
    raise SystemExit(code)


def cmd_check(args: argparse.Namespace) -> None:
    ensure_venv()
    run([str(PY), "-m", "ruff", "check", "."])
    run([str(PY), "-m", "ruff", "format", "--check", "."])
    run([str(PY), "manage.py", "makemigrations", "--check", "--dry-run", "-v", "1"])
    say("lint and migrations are in order")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="set up, load the demo and run the hub")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument(
        "--port", default=8000, type=_port, help="the hub's port (default 8000; the sandbox takes the next)"
    )
    demo.add_argument("--no-run", action="store_true", help="set up and load the demo, but do not start the server")
    demo.add_argument("--no-sandbox", action="store_true", help="do not start the sandbox systems")
    sub.add_parser("test", help="run the tests (extra arguments go to pytest)")
    sub.add_parser("check", help="ruff and migrations-in-sync")
    args, extra = parser.parse_known_args()
    if extra and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.pytest_args = extra
    {"demo": cmd_demo, "test": cmd_test, "check": cmd_check}[args.command](args)


if __name__ == "__main__":
    main()
