"""Fixtures for the connector tests: the sandbox systems in their own process over HTTP on loopback, real
Celery workers (and beat) as separate processes against Redis and the test database, and helpers that
assert "every record delivered exactly once, nothing lost"."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from canonical.audit import Channel, audit_context
from canonical.domains import get_domain
from canonical.services.ingest import envelope_parse, source_records_ingest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

# Knobs shared by the test process and its workers: short leases and backoff so failures heal quickly.
FAST = {
    "MDM_DELIVERY_LEASE_SECONDS": "3",
    "MDM_RETRY_BASE_SECONDS": "0.2",
    "MDM_RETRY_CAP_SECONDS": "1.5",
    "MDM_RELAY_INTERVAL": "0.5",
    "MDM_PULL_INTERVAL": "3600",  # beat pulls only where a test is about pulls (extra_env)
    "MDM_PULL_OVERLAP_SECONDS": "5",
    "MDM_HTTP_TIMEOUT": "3",
    "MDM_RELAY_MAX_SECONDS": "10",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, dict]:
    """Start `work()` in a thread of its own, as another worker would run it (its own database connection, closed
    at the end); returns the thread and a dict that holds its result under "result" once it is done."""
    from django.db import connection as db_connection

    out: dict = {}

    def run() -> None:
        try:
            out["result"] = work()
        finally:
            db_connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def wait_for(predicate: Callable[[], Any], *, timeout: float = 60, interval: float = 0.2, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


def at(seconds: float = 0) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).isoformat()


def ingest(system: str, domain: str, *records: dict) -> list:
    spec = get_domain(domain)
    envelopes = [envelope_parse(r, spec=spec) for r in records]
    with audit_context(actor=f"test:{system}", channel=Channel.CONNECTOR, reason="test data"):
        return source_records_ingest(system=system, domain=domain, envelopes=envelopes)


def rec(source_id: str, seconds: float = 0, deleted: bool = False, **attributes) -> dict:
    return {"source_id": source_id, "updated_at": at(seconds), "deleted": deleted, "attributes": attributes}


class Sandbox:
    """The sandbox server as a separate process, and its /_admin API."""

    def __init__(self, store: Path, port: int | None = None):
        self.store = store
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.http = requests.Session()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Sandbox:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "connectors.sandbox", "--port", str(self.port), "--store", str(self.store)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        wait_for(self._up, timeout=20, what="the sandbox to listen")
        return self

    def _up(self) -> bool:
        try:
            return self.http.get(f"{self.url}/_admin/health", timeout=1).ok
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def admin(self, method: str, route: str, **kwargs) -> Any:
        resp = self.http.request(method, f"{self.url}/_admin/{route}", timeout=30, **kwargs)
        resp.raise_for_status()
        return resp.json()

    def reset(self) -> None:
        self.admin("POST", "reset")

    def put(self, system: str, obj: str, data: dict, **extra) -> dict:
        return self.admin("POST", "put", json={"system": system, "object": obj, "data": data, **extra})

    def put_many(self, items: list[dict]) -> list[dict]:
        return self.admin("POST", "put_many", json={"items": items})

    def records(self, system: str, obj: str, *, live: bool = True) -> list[dict]:
        rows = self.admin("GET", "records", params={"system": system, "object": obj})
        return [r for r in rows if not (live and r["deleted"])]

    def writes(self, system: str | None = None, obj: str | None = None) -> list[dict]:
        params = {k: v for k, v in (("system", system), ("object", obj)) if v}
        return self.admin("GET", "writes", params=params)

    def faults(self, system: str, **switches) -> dict:
        return self.admin("POST", "faults", json={"system": system, **switches})

    def calls(self) -> dict:
        return self.admin("GET", "faults")["calls"]


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory):
    server = Sandbox(tmp_path_factory.mktemp("sandbox")).start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server) -> Sandbox:
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture
def connect(db):
    """connect(sandbox, *systems, **options_by_system): point systems at a sandbox."""
    from connectors.services.connections import SANDBOX_PATHS, connection_configure

    def make(box: Sandbox, *systems: str, options: dict | None = None) -> None:
        with audit_context(actor="pytest", channel=Channel.JOB, reason="connect"):
            for code in systems:
                connection_configure(system=code, kind=code, base_url=box.url + SANDBOX_PATHS[code],
                                     options=(options or {}).get(code, {}))  # fmt: skip

    return make


# --- real Celery workers ----------------------------------------------------------------------------------


class Worker:
    """`celery worker` (optionally with beat) as its own process group, so kill -9 takes all of it."""

    def __init__(self, env: dict, log: Path, *, beat: bool, name: str):
        self.env, self.log, self.beat, self.name = env, log, beat, name
        self.proc: subprocess.Popen | None = None

    def start(self) -> Worker:
        cmd = [str(BIN / "celery"), "-A", "mdm", "worker", "--pool=solo", "--loglevel=INFO", "-n", f"{self.name}@%h",
               "--without-gossip", "--without-mingle"]  # fmt: skip
        if self.beat:
            cmd += ["-B", "-s", str(self.log.with_suffix(".beat"))]
        self.log.write_text("")
        self._out = self.log.open("a")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=self._out, stderr=subprocess.STDOUT,
                                     start_new_session=True)  # fmt: skip
        wait_for(lambda: " ready." in self.log.read_text() or self.proc.poll() is not None, timeout=60,
                 what=f"worker {self.name} to start")  # fmt: skip
        if self.proc.poll() is not None:
            raise AssertionError(f"worker {self.name} exited:\n{self.log.read_text()[-3000:]}")
        return self

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill9()
        self._out.close()


@pytest.fixture
def fast_knobs(settings):
    for name, value in FAST.items():
        setattr(settings, name, float(value))
    return settings


@pytest.fixture
def workers(transactional_db, settings, fast_knobs, tmp_path):
    """workers(beat=False, broker=None) → a started Worker against the test database (and Redis db of
    REDIS_URL, flushed first, unless `broker` names another Redis)."""
    import redis

    db = settings.DATABASES["default"]
    database_url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    broker = os.environ["REDIS_URL"]
    redis.Redis.from_url(broker).flushdb()
    started: list[Worker] = []

    def start(*, beat: bool = False, broker_url: str | None = None, extra_env: dict | None = None) -> Worker:
        env = {**os.environ, **FAST, "DATABASE_URL": database_url, "REDIS_URL": broker_url or broker,
               "CELERY_TASK_ALWAYS_EAGER": "false", **(extra_env or {})}  # fmt: skip
        env.pop("CELERY_BROKER_URL", None)
        worker = Worker(env, tmp_path / f"worker{len(started)}.log", beat=beat, name=f"w{len(started)}")
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:  # the test is over: no need to wait for a warm shutdown
        worker.kill9()
        worker.stop()


# --- "every record delivered exactly once, nothing lost" --------------------------------------------------


def assert_delivered_once(box: Sandbox, *, system: str, obj: str, domain: str, golden_ids) -> None:
    from canonical.models import CrossReference
    from connectors.models import DeadLetter, Delivery, DeliveryStatus

    wanted = sorted(str(g) for g in golden_ids)
    held = sorted(r["ext_id"] for r in box.records(system, obj))
    assert held == wanted, f"{system} {obj}: expected each of {len(wanted)} records once, found {len(held)}"
    open_deliveries = Delivery.objects.filter(system_id=system, domain=domain).exclude(status=DeliveryStatus.DONE)
    assert list(open_deliveries.values_list("status", "last_error")) == []
    assert not DeadLetter.objects.filter(system_id=system, replayed_at__isnull=True).exists()
    xrefs = sorted(
        str(g)
        for g in CrossReference.objects.filter(system_id=system, domain=domain).values_list("golden_id", flat=True)
    )
    assert xrefs == wanted, "each pushed record has exactly one cross-reference with the system's id"


@pytest.fixture(autouse=True)
def _fresh_cache():
    """System pauses (429) and relay kicks live in the cache: start every test without them."""
    from django.core.cache import cache

    cache.clear()
    yield
