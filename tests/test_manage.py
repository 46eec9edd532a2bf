"""manage.py itself: what no command can cope with is refused or softened before any command runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _manage(*args: str | bytes, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    environ.update(env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=environ, capture_output=True, timeout=180)


def test_an_argument_that_is_not_utf8_is_refused_by_name_before_any_query(tmp_path):
    proc = _manage(b"api_client", b"revoke", b"\xff", DATABASE_URL=f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    assert proc.returncode == 1
    assert b"the argument '\\xff' is not UTF-8 text" in proc.stderr
    assert b"Traceback" not in proc.stderr
    assert not (tmp_path / "hub.sqlite3").exists()  # nothing ran


def test_output_the_terminal_cannot_show_is_escaped_not_a_traceback_after_the_work(tmp_path):
    database = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    assert _manage("migrate", "-v0", DATABASE_URL=database).returncode == 0
    export = tmp_path / "accounts.csv"
    export.write_text("source_id,name,country\nX1,Café Ltd,GB\n", encoding="utf-8")

    proc = _manage("ingest", "--system", "crm", "--domain", "customer", "--no-progress", str(export),
                   DATABASE_URL=database, PYTHONIOENCODING="cp1252")  # fmt: skip

    assert proc.returncode == 0, proc.stderr[-1500:]
    assert b"\\u2192 crm customer: 1 record(s)" in proc.stdout and b"created 1" in proc.stdout
    assert b"Traceback" not in proc.stderr

    # a file whose name is not UTF-8 (any bytes are a file name): ingested, its name escaped where it is kept
    odd = os.path.join(os.fsencode(tmp_path), b"accounts-\xff.csv")
    with open(odd, "wb") as fh:
        fh.write(b"source_id,name,country\nX2,Beta Ltd,GB\n")
    proc = _manage(b"ingest", b"--system", b"crm", b"--domain", b"customer", b"--no-progress", odd,
                   DATABASE_URL=database)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert b"created 1" in proc.stdout and b"Traceback" not in proc.stderr


def test_output_to_a_reader_that_went_away_ends_quietly(tmp_path):
    read_end, write_end = os.pipe()
    os.close(read_end)  # as `| head` does once it has its lines
    environ = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    environ["DATABASE_URL"] = f"sqlite:///{tmp_path / 'hub.sqlite3'}"
    try:
        proc = subprocess.run([sys.executable, "manage.py", "help"], cwd=ROOT, env=environ, stdout=write_end,
                              stderr=subprocess.PIPE, timeout=180)  # fmt: skip
    finally:
        os.close(write_end)
    assert proc.returncode == 141
    assert proc.stderr == b""  # no traceback, no "Exception ignored" at exit
