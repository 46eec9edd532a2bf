"""/health: the database, Redis (when configured) and a worker heartbeat; 200 when healthy, 503 naming the
failed check, JSON either way."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from connectors.models import WorkerHeartbeat
from connectors.ops.health import heartbeat_write

from .conftest import wait_for


@pytest.fixture
def with_broker(settings):
    """As in production: tasks go to a broker, so a worker must be alive."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.REDIS_URL = ""
    return settings


def test_without_a_broker_the_hub_is_healthy_with_the_database_alone(client, db, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.REDIS_URL = ""
    resp = client.get("/health")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ok" and body["failed"] == []
    assert body["checks"]["database"]["ok"] and "redis" not in body["checks"]
    assert "in-process" in body["checks"]["worker"]["detail"]


def test_no_worker_heartbeat_is_a_503_naming_the_worker(client, db, with_broker):
    resp = client.get("/health")
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "fail" and body["failed"] == ["worker"]
    assert "no worker heartbeat" in body["checks"]["worker"]["error"]
    assert body["checks"]["database"]["ok"]


def test_a_fresh_heartbeat_is_healthy_and_a_stale_one_is_not(client, db, with_broker):
    heartbeat_write(worker="celery@w1")
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["checks"]["worker"]["worker"] == "celery@w1"
    WorkerHeartbeat.objects.filter(worker="celery@w1").update(at=timezone.now() - dt.timedelta(minutes=10))
    resp = client.get("/health")
    assert resp.status_code == 503 and resp.json()["failed"] == ["worker"]
    assert "600 s old" in resp.json()["checks"]["worker"]["error"]


def test_an_unreachable_redis_is_a_503_naming_redis(client, db, with_broker):
    heartbeat_write(worker="celery@w1")
    with_broker.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    resp = client.get("/health")
    assert resp.status_code == 503
    assert resp.json()["failed"] == ["redis"]
    assert "Error" in resp.json()["checks"]["redis"]["error"]


def test_health_answers_only_reads(client, db):
    assert client.post("/health").status_code == 405


@pytest.mark.postgres
@pytest.mark.redis
def test_a_real_worker_with_beat_makes_health_green(live_server, workers, settings):
    import os

    import requests

    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.REDIS_URL = os.environ["REDIS_URL"]
    assert requests.get(f"{live_server.url}/health", timeout=10).status_code == 503
    workers(beat=True, extra_env={"MDM_HEARTBEAT_INTERVAL": "1"})
    body = wait_for(lambda: (r := requests.get(f"{live_server.url}/health", timeout=10)).ok and r.json(), timeout=60,
                    what="a worker heartbeat")  # fmt: skip
    assert body["checks"]["redis"]["ok"] and body["checks"]["worker"]["age_seconds"] < 60
