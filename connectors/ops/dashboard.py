"""The operations dashboard (staff only, in the admin): sync status per system, reconciliation drift over
time, the exception backlog and lead-to-project cycle times, as server-side SVG charts."""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path
from typing import Any

from django.db.models import Count, Min, Q
from django.template import engines
from django.template.response import TemplateResponse
from django.utils import timezone

from .charts import bar_chart, line_chart

CYCLE_BANDS = (("≤1h", 3600), ("≤4h", 4 * 3600), ("≤1d", 86400), ("≤3d", 3 * 86400), ("≤7d", 7 * 86400), (">7d", None))


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def dashboard_sync_status(*, now: dt.datetime) -> list[dict[str, Any]]:
    """Per connected system: last pull and push, outbox lag, failure rate (24 h), dead letters, last reconciliation."""
    from connectors.models import Connection, DeadLetter, Delivery, DeliveryStatus, SyncRun
    from connectors.reconciliation.services import reconciliation_last_runs

    since = now - dt.timedelta(hours=24)
    rates = {
        r["system_id"]: r
        for r in SyncRun.objects.filter(started_at__gte=since)
        .values("system_id")
        .annotate(total=Count("id"), failed=Count("id", filter=Q(status="failed")))
        .order_by()
    }
    pending = {
        r["system_id"]: r
        for r in Delivery.objects.filter(status__in=(DeliveryStatus.PENDING, DeliveryStatus.LEASED))
        .values("system_id")
        .annotate(n=Count("id"), first=Min("created_at"))
        .order_by()
    }
    dead = dict(
        DeadLetter.objects.filter(replayed_at__isnull=True).values_list("system_id").annotate(n=Count("id")).order_by()
    )
    recon = reconciliation_last_runs()
    rows = []
    for conn in Connection.objects.select_related("system").order_by("system_id"):
        code = conn.system_id
        last = {
            direction: SyncRun.objects.filter(system_id=code, direction=direction)
            .order_by("-started_at", "-id")
            .first()
            for direction in ("pull", "push")
        }
        rate = rates.get(code, {"total": 0, "failed": 0})
        p = pending.get(code, {"n": 0, "first": None})
        run = recon.get(code)
        rows.append(
            {
                "system": code,
                "kind": conn.kind,
                "enabled": conn.enabled,
                "last_pull": last["pull"],
                "last_push": last["push"],
                "runs_24h": rate["total"],
                "failure_rate": round(100 * rate["failed"] / rate["total"], 1) if rate["total"] else 0.0,
                "pending": p["n"],
                "lag_seconds": round((now - p["first"]).total_seconds()) if p["first"] else 0,
                "dead_letters": dead.get(code, 0),
                "reconciliation": run,
                "out_of_sync": (sum(run.actions.values()) - run.actions.get("healed", 0)) if run else None,
            }
        )
    return rows


def dashboard_drift(*, now: dt.datetime, days: int = 30) -> dict[str, list[tuple[str, float]]]:
    """Differences found per system, per day (the day's last run), over the last `days` days."""
    from connectors.models import ReconciliationRun

    series: dict[str, dict[str, float]] = {}
    runs = ReconciliationRun.objects.filter(started_at__gte=now - dt.timedelta(days=days)).exclude(status="running")
    for system, started, counts in runs.order_by("started_at", "id").values_list("system_id", "started_at", "counts"):
        series.setdefault(system, {})[started.date().isoformat()] = float(sum((counts or {}).values()))
    return {system: sorted(points.items()) for system, points in series.items()}


def dashboard_exceptions(*, now: dt.datetime) -> list[dict[str, Any]]:
    from canonical.models import DataException, ExceptionKind, ExceptionStatus

    day, week = now - dt.timedelta(days=1), now - dt.timedelta(days=7)
    rows = {
        r["kind"]: r
        for r in DataException.objects.filter(status=ExceptionStatus.OPEN)
        .values("kind")
        .annotate(
            n=Count("id"),
            over_1d=Count("id", filter=Q(created_at__lt=day)),
            over_7d=Count("id", filter=Q(created_at__lt=week)),
            oldest=Min("created_at"),
        )  # fmt: skip
        .order_by()
    }
    out = []
    for kind, label in ExceptionKind.choices:
        r = rows.get(kind, {})
        oldest = r.get("oldest")
        out.append({"kind": kind, "label": label, "open": r.get("n", 0), "over_1d": r.get("over_1d", 0),
                    "over_7d": r.get("over_7d", 0),
                    "oldest_hours": round((now - oldest).total_seconds() / 3600, 1) if oldest else None})  # fmt: skip
    return out


def dashboard_cycle_times(*, now: dt.datetime) -> dict[str, Any]:
    from connectors.models import DealCycle

    values = list(DealCycle.objects.filter(cycle_seconds__isnull=False).values_list("cycle_seconds", flat=True))
    bands, low = [], None
    for label, high in CYCLE_BANDS:
        n = sum(1 for v in values if (low is None or v > low) and (high is None or v <= high))
        bands.append((label, float(n)))
        low = high
    waiting = DealCycle.objects.filter(project_created_at__isnull=True).aggregate(n=Count("id"), first=Min("closed_at"))
    p50, p90 = _percentile(values, 0.5), _percentile(values, 0.9)
    return {
        "deals": len(values),
        "bands": bands,
        "p50_hours": round(p50 / 3600, 2) if p50 is not None else None,
        "p90_hours": round(p90 / 3600, 2) if p90 is not None else None,
        "waiting": waiting["n"],
        "waiting_oldest_hours": round((now - waiting["first"]).total_seconds() / 3600, 1) if waiting["first"] else None,
    }


def dashboard_context(*, now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    sync = dashboard_sync_status(now=now)
    drift = dashboard_drift(now=now)
    exceptions = dashboard_exceptions(now=now)
    cycles = dashboard_cycle_times(now=now)
    return {
        "now": now,
        "sync": sync,
        "exceptions": exceptions,
        "cycles": cycles,
        "charts": {
            "failure": bar_chart(
                [(r["system"], r["failure_rate"]) for r in sync], title="Failed sync runs, last 24 h", unit="%"
            ),  # fmt: skip
            "lag": bar_chart(
                [(r["system"], r["lag_seconds"]) for r in sync], title="Outbox lag (oldest waiting)", unit="s"
            ),  # fmt: skip
            "drift": line_chart(drift, title="Reconciliation differences per day"),
            "exceptions": bar_chart(
                [(r["kind"].replace("_", " "), r["open"]) for r in exceptions], title="Open exceptions by kind"
            ),  # fmt: skip
            "cycles": bar_chart(cycles["bands"], title="Deal closed → project created"),
        },
    }


@cache
def _template():
    return engines["django"].from_string((Path(__file__).parent / "templates" / "dashboard.html").read_text())


def dashboard_view(request, *, admin_site, extra_context: dict | None = None):
    """Thin: the admin's context, the dashboard's numbers and charts, one template."""
    context = {**admin_site.each_context(request), "title": "Operations dashboard", **dashboard_context(),
               **(extra_context or {})}  # fmt: skip
    return TemplateResponse(request, _template(), context)
