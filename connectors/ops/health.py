"""/health for load balancers and orchestrators: the database, Redis (when configured) and a worker heartbeat.

200 with every check when all pass; 503 naming the failing check(s). JSON either way. A worker proves it is
alive through the `connectors.heartbeat` beat task (and on start-up): its row's age must stay below
MDM_HEARTBEAT_MAX_AGE seconds. Without a broker (tasks run eagerly in-process) there is no worker to check.
"""

from __future__ import annotations

import datetime as dt
import socket
import time
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from connectors.models import WorkerHeartbeat


def heartbeat_max_age() -> float:
    return float(getattr(settings, "MDM_HEARTBEAT_MAX_AGE", 180))


def heartbeat_write(*, worker: str | None = None) -> str:
    """Record that `worker` (default: this host) is alive now; forget workers silent for a day."""
    if not worker:
        from celery import current_task

        request = getattr(current_task, "request", None)
        worker = getattr(request, "hostname", None) or socket.gethostname()
    now = timezone.now()
    WorkerHeartbeat.objects.update_or_create(worker=worker[:200], defaults={"at": now})
    WorkerHeartbeat.objects.filter(at__lt=now - dt.timedelta(days=1)).delete()
    return worker


def _timed(check) -> dict[str, Any]:
    t0 = time.monotonic()
    try:
        detail = check()
        result = {"ok": True, **detail}
    except Exception as exc:  # noqa: BLE001  (a failing dependency is a result here, not an error)
        result = {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    result["ms"] = round((time.monotonic() - t0) * 1000, 1)
    return result


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"vendor": connection.vendor}


def _redis() -> dict:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    finally:
        client.close()
    return {}


def _worker() -> dict:
    if getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        return {"detail": "no broker: tasks run in-process"}
    newest = WorkerHeartbeat.objects.order_by("-at").first()
    if newest is None:
        raise RuntimeError("no worker heartbeat yet: start a worker with beat (celery -A mdm worker -B)")
    age = (timezone.now() - newest.at).total_seconds()
    if age > heartbeat_max_age():
        raise RuntimeError(f"the last worker heartbeat ({newest.worker}) is {age:.0f} s old "
                           f"(limit {heartbeat_max_age():.0f} s): are the worker and beat running?")  # fmt: skip
    return {"worker": newest.worker, "age_seconds": round(age, 1)}


def health_check() -> dict[str, Any]:
    """{"status": "ok"|"fail", "checks": {name: {"ok", "ms", …}}, "failed": [names]}."""
    checks = {"database": _timed(_database)}
    if getattr(settings, "REDIS_URL", ""):
        checks["redis"] = _timed(_redis)
    checks["worker"] = _timed(_worker) if checks["database"]["ok"] else {"ok": False, "error": "database unavailable"}
    failed = [name for name, result in checks.items() if not result["ok"]]
    return {"status": "fail" if failed else "ok", "checks": checks, "failed": failed}


@never_cache
@require_http_methods(["GET", "HEAD"])
def health_view(request: HttpRequest) -> JsonResponse:
    report = health_check()
    return JsonResponse(report, status=503 if report["failed"] else 200)
