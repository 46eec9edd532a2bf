"""The quick start's embedded SQLite database with two writers at once (the threaded dev server serving a steward
and an API client, two webhooks): the second waits for the first instead of failing with "database is locked".

SQLite starts a transaction without a lock and takes the write lock at the first write; when two transactions
have both read and one of them writes, the other's write fails at once (SQLite does not wait there, since the
two could deadlock). The hub's settings start every transaction with the write lock (`transaction_mode`
IMMEDIATE), so a second writer waits, up to the busy timeout, at its start.

Run in a subprocess on a file database set up by the settings module the quick start uses (the test run's own
database is another), with the first ingest held open after its reads until the second has started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, threading, time
import django
django.setup()
from django.core.management import call_command
from django.db import connection
call_command("migrate", verbosity=0)
from canonical.audit import Channel, audit_context
from canonical.domains import get_domain
from canonical.matching.signals import match_decided
from canonical.models import Customer, System
from canonical.services.ingest import envelope_parse, source_records_ingest

for code in ("crm", "erp"):
    System.objects.get_or_create(code=code, defaults={"name": code})
connection.close()
spec = get_domain("customer")
second_started = threading.Event()
outcomes, errors = {}, []

def hold_first(sender, **kwargs):
    # the first ingest has read what it matched against; it goes on writing once the second one has begun
    if threading.current_thread().name == "first":
        second_started.wait(timeout=30)
        time.sleep(0.5)

def ingest(name, system, record):
    try:
        if name == "second":
            second_started.set()
        with audit_context(actor="pytest", channel=Channel.API):
            results = source_records_ingest(system=system, domain="customer", envelopes=[envelope_parse(record, spec=spec)])
        outcomes[name] = [r.outcome for r in results]
    except Exception as exc:
        errors.append(f"{name}: {exc!r}")
    finally:
        connection.close()

match_decided.connect(hold_first)
first = threading.Thread(name="first", target=ingest, args=("first", "crm", {
    "source_id": "C1", "updated_at": "2026-01-01T00:00:00Z", "attributes": {"name": "Northwind Advisory", "country": "GB"}}))
second = threading.Thread(name="second", target=ingest, args=("second", "erp", {
    "source_id": "E7", "updated_at": "2026-01-01T00:00:00Z", "attributes": {"name": "Globex Partners", "country": "FR"}}))
first.start()
time.sleep(0.3)  # the first is in its transaction, holding its reads
second.start()
first.join(60); second.join(60)
print(json.dumps({"outcomes": outcomes, "errors": errors, "customers": Customer.objects.count()}))
"""


def test_two_ingests_at_once_on_the_embedded_database_both_land(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL")}
    env.update(DJANGO_SETTINGS_MODULE="mdm.settings", DATABASE_URL=f"sqlite:///{tmp_path / 'hub.sqlite3'}")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["errors"] == []
    assert report["outcomes"] == {"first": ["created"], "second": ["created"]}
    assert report["customers"] == 2
